"""The playback WebSocket: protocol, consumer base, consumer, limits."""
