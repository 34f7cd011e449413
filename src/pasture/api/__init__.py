"""What the server and the Python client share: the wire types, typed once, and the
Modelfile grammar (the client parses a Modelfile, the server writes one for `show`)."""
