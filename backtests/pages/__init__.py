"""The web app's pages: server-rendered templates over the API's own queries and
serializers, with small static scripts (no inline script: the CSP holds)."""
