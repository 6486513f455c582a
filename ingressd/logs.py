"""Log line format shared by the server and its config-loading child.

Owns: the format string of ingressd's own log lines.  Nothing else, so that the
loader child can use it without importing the command line.
"""

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
