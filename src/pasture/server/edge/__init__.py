"""What every request meets before a route: the Host, Origin, API-key and body-size rules
(`security.py`), bodies read as JSON whatever their Content-Type (`bodies.py`), and the
slow-client timeouts of the HTTP protocol itself (`timeouts.py`), the connection cap
(`connections.py`) and the throttle on the log lines a flood repeats (`logs.py`)."""
