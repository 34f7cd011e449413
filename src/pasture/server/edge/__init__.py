"""What every request meets before a route: the Host, Origin, API-key and body-size rules
(`security.py`), bodies read as JSON whatever their Content-Type (`bodies.py`), and the
slow-client timeouts of the HTTP protocol itself (`timeouts.py`)."""
