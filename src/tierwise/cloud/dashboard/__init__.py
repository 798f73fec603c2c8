"""The fleet dashboard: JSON endpoints built from what the cloud stores, and a static page.

`routes.router` carries `/v1/fleet`, `/v1/sites/{site}/live` and `/dashboard`; the app mounts
`routes.static_files` at `/dashboard/static`. docs/dashboard.md shows the page.
"""
