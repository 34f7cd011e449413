// Package template is Ollama's template/template.go, reduced to Parse and Execute and the
// data a template sees, so that %T and error texts name the same types as Ollama's.
package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"pasture/fuzz/gotemplate_diff/api"
)

// ----- Ollama's template data -------------------------------------------------------

type templateTools []templateTool

func (t templateTools) String() string {
	bts, _ := json.Marshal(t)
	return string(bts)
}

type templateArgs map[string]any

func (t templateArgs) String() string {
	if t == nil {
		return "{}"
	}
	bts, _ := json.Marshal(t)
	return string(bts)
}

type templateProperties map[string]api.ToolProperty

func (t templateProperties) String() string {
	if t == nil {
		return "{}"
	}
	bts, _ := json.Marshal(t)
	return string(bts)
}

func (t templateTool) String() string {
	bts, _ := json.Marshal(t)
	return string(bts)
}

type templateTool struct {
	Type     string               `json:"type"`
	Items    any                  `json:"items,omitempty"`
	Function templateToolFunction `json:"function"`
}

type templateToolFunction struct {
	Name        string                         `json:"name"`
	Description string                         `json:"description"`
	Parameters  templateToolFunctionParameters `json:"parameters"`
}

type templateToolFunctionParameters struct {
	Type       string             `json:"type"`
	Defs       any                `json:"$defs,omitempty"`
	Items      any                `json:"items,omitempty"`
	Required   []string           `json:"required,omitempty"`
	Properties templateProperties `json:"properties"`
}

type templateToolCall struct {
	ID       string
	Function templateToolCallFunction
}

type templateToolCallFunction struct {
	Index     int
	Name      string
	Arguments templateArgs
}

type templateMessage struct {
	Role       string
	Content    string
	Thinking   string
	Images     []string
	ToolCalls  []templateToolCall
	ToolName   string
	ToolCallID string
}

func convertTools(tools []api.Tool) templateTools {
	if tools == nil {
		return nil
	}
	result := make(templateTools, len(tools))
	for i, tool := range tools {
		p := tool.Function.Parameters
		result[i] = templateTool{
			Type: tool.Type, Items: tool.Items,
			Function: templateToolFunction{
				Name: tool.Function.Name, Description: tool.Function.Description,
				Parameters: templateToolFunctionParameters{
					Type: p.Type, Defs: p.Defs, Items: p.Items, Required: p.Required,
					Properties: templateProperties(p.Properties.ToMap()),
				},
			},
		}
	}
	return result
}

func convertMessages(messages []*api.Message) []*templateMessage {
	if messages == nil {
		return nil
	}
	result := make([]*templateMessage, len(messages))
	for i, msg := range messages {
		var calls []templateToolCall
		for _, tc := range msg.ToolCalls {
			calls = append(calls, templateToolCall{ID: tc.ID, Function: templateToolCallFunction{
				Index: tc.Function.Index, Name: tc.Function.Name,
				Arguments: templateArgs(tc.Function.Arguments),
			}})
		}
		result[i] = &templateMessage{Role: msg.Role, Content: msg.Content, Thinking: msg.Thinking,
			Images: msg.Images, ToolCalls: calls, ToolName: msg.ToolName, ToolCallID: msg.ToolCallID}
	}
	return result
}

func collate(msgs []api.Message) (string, []*api.Message) {
	var system []string
	var collated []*api.Message
	for i := range msgs {
		if msgs[i].Role == "system" {
			system = append(system, msgs[i].Content)
		}
		if len(collated) > 0 && collated[len(collated)-1].Role == msgs[i].Role && msgs[i].Role != "tool" {
			collated[len(collated)-1].Content += "\n\n" + msgs[i].Content
		} else {
			collated = append(collated, &msgs[i])
		}
	}
	return strings.Join(system, "\n\n"), collated
}

// ----- Ollama's Parse and Execute ---------------------------------------------------

var funcs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"currentDate":      func(args ...string) string { return time.Now().Format("2006-01-02") },
	"yesterdayDate":    func(args ...string) string { return time.Now().AddDate(0, 0, -1).Format("2006-01-02") },
	"toTypeScriptType": func(v any) string { return "any" },
}

var response = parse.ActionNode{NodeType: parse.NodeAction, Pipe: &parse.PipeNode{
	NodeType: parse.NodePipe, Cmds: []*parse.CommandNode{{NodeType: parse.NodeCommand,
		Args: []parse.Node{&parse.FieldNode{NodeType: parse.NodeField, Ident: []string{"Response"}}}}}}}

func vars(t *template.Template) ([]string, error) {
	var names []string
	for _, tt := range t.Templates() {
		for _, n := range tt.Root.Nodes {
			v, err := identifiers(n)
			if err != nil {
				return names, err
			}
			names = append(names, v...)
		}
	}
	set := map[string]bool{}
	var out []string
	for _, n := range names {
		if !set[strings.ToLower(n)] {
			set[strings.ToLower(n)] = true
			out = append(out, strings.ToLower(n))
		}
	}
	return out, nil
}

func identifiers(n parse.Node) ([]string, error) {
	switch n := n.(type) {
	case *parse.ListNode:
		var names []string
		for _, n := range n.Nodes {
			i, err := identifiers(n)
			if err != nil {
				return names, err
			}
			names = append(names, i...)
		}
		return names, nil
	case *parse.TemplateNode:
		if n.Pipe == nil {
			return nil, errors.New("undefined template specified")
		}
		return identifiers(n.Pipe)
	case *parse.ActionNode:
		if n.Pipe == nil {
			return nil, errors.New("undefined action in template")
		}
		return identifiers(n.Pipe)
	case *parse.BranchNode:
		if n.Pipe == nil {
			return nil, errors.New("undefined branch")
		}
		names, err := identifiers(n.Pipe)
		if err != nil {
			return names, err
		}
		for _, l := range []*parse.ListNode{n.List, n.ElseList} {
			if l != nil {
				i, err := identifiers(l)
				if err != nil {
					return names, err
				}
				names = append(names, i...)
			}
		}
		return names, nil
	case *parse.IfNode:
		return identifiers(&n.BranchNode)
	case *parse.RangeNode:
		return identifiers(&n.BranchNode)
	case *parse.WithNode:
		return identifiers(&n.BranchNode)
	case *parse.PipeNode:
		var names []string
		for _, c := range n.Cmds {
			for _, a := range c.Args {
				i, err := identifiers(a)
				if err != nil {
					return names, err
				}
				names = append(names, i...)
			}
		}
		return names, nil
	case *parse.FieldNode:
		return n.Ident, nil
	case *parse.VariableNode:
		return n.Ident, nil
	}
	return nil, nil
}

func deleteNode(n parse.Node, fn func(parse.Node) bool) parse.Node {
	var walk func(n parse.Node) parse.Node
	walk = func(n parse.Node) parse.Node {
		if fn(n) {
			return nil
		}
		switch t := n.(type) {
		case *parse.ListNode:
			var nodes []parse.Node
			for _, c := range t.Nodes {
				if n := walk(c); n != nil {
					nodes = append(nodes, n)
				}
			}
			t.Nodes = nodes
			return t
		case *parse.IfNode:
			t.BranchNode = *walk(&t.BranchNode).(*parse.BranchNode)
		case *parse.WithNode:
			t.BranchNode = *walk(&t.BranchNode).(*parse.BranchNode)
		case *parse.RangeNode:
			t.BranchNode = *walk(&t.BranchNode).(*parse.BranchNode)
		case *parse.BranchNode:
			t.List = walk(t.List).(*parse.ListNode)
			if t.ElseList != nil {
				t.ElseList = walk(t.ElseList).(*parse.ListNode)
			}
		case *parse.ActionNode:
			n := walk(t.Pipe)
			if n == nil {
				return nil
			}
			t.Pipe = n.(*parse.PipeNode)
		case *parse.PipeNode:
			var commands []*parse.CommandNode
			for _, c := range t.Cmds {
				var args []parse.Node
				for _, a := range c.Args {
					if n := walk(a); n != nil {
						args = append(args, n)
					}
				}
				if len(args) == 0 {
					return nil
				}
				c.Args = args
				commands = append(commands, c)
			}
			if len(commands) == 0 {
				return nil
			}
			t.Cmds = commands
		}
		return n
	}
	return walk(n)
}

type Case struct {
	ID       string          `json:"id"`
	Template string          `json:"template"`
	Messages []api.Message   `json:"messages"`
	Tools    []api.Tool      `json:"tools"`
	Think    json.RawMessage `json:"think"`
	Prompt   string          `json:"prompt"`
	Suffix   string          `json:"suffix"`
}

type Result struct {
	ID     string  `json:"id"`
	Output *string `json:"output,omitempty"`
	Stage  string  `json:"stage,omitempty"`
	Error  string  `json:"error,omitempty"`
}

func thinkValues(raw json.RawMessage) (bool, string, bool) {
	var b bool
	var s string
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return false, "", false
	case json.Unmarshal(raw, &b) == nil:
		level := ""
		if b {
			level = "medium" // what Pasture's Think.of does with `true`
		}
		return b, level, true
	case json.Unmarshal(raw, &s) == nil:
		return true, s, true
	}
	return false, "", false
}

// Run renders one case as Ollama would, or says at which stage Go refused it.
func Run(c Case) (res Result) {
	res.ID = c.ID
	defer func() {
		if r := recover(); r != nil {
			res = Result{ID: c.ID, Stage: "panic", Error: fmt.Sprint(r)}
		}
	}()
	tmpl, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(c.Template)
	if err != nil {
		return Result{ID: c.ID, Stage: "parse", Error: err.Error()}
	}
	names, err := vars(tmpl)
	if err != nil {
		return Result{ID: c.ID, Stage: "parse", Error: err.Error()}
	}
	if !slices.Contains(names, "messages") && !slices.Contains(names, "response") {
		tmpl.Tree.Root.Nodes = append(tmpl.Tree.Root.Nodes, &response)
	}
	think, level, isSet := thinkValues(c.Think)
	var b bytes.Buffer
	system, messages := collate(c.Messages)
	if c.Prompt != "" && c.Suffix != "" {
		err = tmpl.Execute(&b, map[string]any{"Prompt": c.Prompt, "Suffix": c.Suffix, "Response": "",
			"Think": think, "ThinkLevel": level, "IsThinkSet": isSet})
	} else if slices.Contains(names, "messages") {
		err = tmpl.Execute(&b, map[string]any{"System": system, "Messages": convertMessages(messages),
			"Tools": convertTools(c.Tools), "Response": "", "Think": think, "ThinkLevel": level,
			"IsThinkSet": isSet})
	} else {
		err = legacy(tmpl, &b, messages, think, level, isSet)
	}
	if err != nil {
		return Result{ID: c.ID, Stage: "exec", Error: err.Error()}
	}
	out := b.String()
	return Result{ID: c.ID, Output: &out}
}

func legacy(t *template.Template, b *bytes.Buffer, messages []*api.Message, think bool, level string, isSet bool) error {
	var system, prompt, response string
	execute := func() error {
		if err := t.Execute(b, map[string]any{"System": system, "Prompt": prompt, "Response": response,
			"Think": think, "ThinkLevel": level, "IsThinkSet": isSet}); err != nil {
			return err
		}
		system, prompt, response = "", "", ""
		return nil
	}
	for _, m := range messages {
		switch m.Role {
		case "system":
			if prompt != "" || response != "" {
				if err := execute(); err != nil {
					return err
				}
			}
			system = m.Content
		case "user":
			if response != "" {
				if err := execute(); err != nil {
					return err
				}
			}
			prompt = m.Content
		case "assistant":
			response = m.Content
		}
	}
	var cut bool
	nodes := deleteNode(t.Root.Copy(), func(n parse.Node) bool {
		if field, ok := n.(*parse.FieldNode); ok && slices.Contains(field.Ident, "Response") {
			cut = true
			return false
		}
		return cut
	})
	tree := parse.Tree{Root: nodes.(*parse.ListNode)}
	return template.Must(template.New("").AddParseTree("", &tree)).Execute(b, map[string]any{
		"System": system, "Prompt": prompt, "Response": response,
		"Think": think, "ThinkLevel": level, "IsThinkSet": isSet})
}
