"""loadgen component."""

# Environment variable that carries the API key from `tollgate load` to Locust's processes, so the key is
# never on a command line (argv is readable by every local user through `ps`).
API_KEY_ENV = "TOLLGATE_LOAD_API_KEY"
