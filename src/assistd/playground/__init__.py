"""The Playground: a static web app at ``/playground`` that uses only the public ``/v1`` API.

The files under ``static/`` are the project's own hand-written JavaScript and CSS (no framework,
no build step, nothing from another origin); ``router.mount_playground`` serves them with a
Content-Security-Policy that allows only the server's own origin.
"""
