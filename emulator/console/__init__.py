"""The web console at ``/console/``: Studio's create-and-deploy flow, and a live view of what runs.

Pages are rendered here (Jinja2) with a little JavaScript (``static/console.js``, no build step).
Changes go through the SageMaker provider (``actions.py``): the browser calls the AWS JSON API for
single operations (update, delete, invoke, logs), and the console's routes do what needs the server
(streamed uploads, packaging, a deploy of several resources that undoes itself when refused).
"""
from .app import console_app

__all__ = ["console_app"]
