"""The daemon's HTTP surface: a small WSGI router served by waitress with hard limits.

Generic machinery: nothing here knows about Studio; `skylab_watch.callbacks`
adds the completion-callback route.
"""

from skylab_watch.web.app import Handler, Request, Response, Route, Router, normal_path
from skylab_watch.web.server import WebLimits, WebServer

__all__ = ["Handler", "Request", "Response", "Route", "Router", "WebLimits", "WebServer", "normal_path"]
