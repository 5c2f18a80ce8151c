"""The run catalog's REST API: validation, queries, serializers, hashing, the demo."""
