"""The API's routes by concern; ``core.api.app.create_app`` includes them in this order."""
