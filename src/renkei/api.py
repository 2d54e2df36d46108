"""The JSON API, mounted at /api/v1/: one NinjaAPI, one router per app."""

from ninja import NinjaAPI

api = NinjaAPI(title="Renkei API", version="1", urls_namespace="api")
