"""Wire types shared by the server and the Python client: one contract, typed once."""
