"""Operating the service: the `webhooks` command, the on-call commands and their HTTP client."""
