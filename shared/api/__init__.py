"""The HTTP API: routes, request plumbing, models, OpenAPI and token validation.

The only code that sees ``azure.functions.HttpRequest``; it turns requests into engine calls.
"""
