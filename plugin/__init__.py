"""The engine-facing plugin API (Python and C ABI). Not built yet: see the plugin API issue."""
