"""The web dashboard: server-rendered pages (Jinja2), live over Server-Sent Events with htmx.

``session`` logs a viewer in and checks each action's CSRF token, ``panels`` gathers what a
panel shows from the services, ``views`` serves pages, panel fragments and actions, and
``stream`` tells open pages which panels changed.
"""
