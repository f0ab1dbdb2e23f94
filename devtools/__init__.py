"""Development tools, outside the service wheel: the embedded broker, the demo, test receivers.

`make demo`, `make dev`, the tests, the benchmarks and the chaos harness use them; the image
does not ship them (`webhooks dev` and `webhooks demo` need a source checkout).
"""
