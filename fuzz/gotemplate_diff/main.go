// Command gotemplate_diff renders Go TEMPLATEs the way Ollama does, with Go's own
// text/template, so Pasture's interpreter can be compared with it byte for byte.
//
// It reads a JSON array of cases on stdin and writes a JSON array of results:
//
//	[{"id": "x", "template": "...", "messages": [...], "tools": [...], "think": true,
//	  "prompt": "...", "suffix": "..."}]
//	[{"id": "x", "output": "..."} | {"id": "x", "stage": "parse|exec|panic", "error": "..."}]
//
// The data model, Parse, Execute, collate and deleteNode follow Ollama's
// template/template.go and api/types.go (commit fb30760996871fa9460115c753afd2c60d4ab0f7);
// only what a template can see is kept. Run it through fuzz/gotemplate_diff.py.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"pasture/fuzz/gotemplate_diff/template"
)

func main() {
	var cases []template.Case
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, "bad input:", err)
		os.Exit(2)
	}
	results := make([]template.Result, len(cases))
	for i, c := range cases {
		results[i] = template.Run(c)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
