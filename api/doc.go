// Package api is Lift's HTTP API: a REST v1 JSON interface over the registry,
// assignment and exposure log, served with echo.
//
// Every route is declared once, through Server.route, with the role it needs and
// its OpenAPI description; the same table registers the echo handler (behind
// authentication and the role check) and produces /openapi.json, so the document
// cannot drift from the routes. Each area of the API has its own file with a
// xxxRoutes method, and routes.go calls each of them, one line per area.
//
// Errors are answered by one function (Server.handleError) that maps the kind of
// an experiment.Error to an HTTP status and the body
//
//	{"error": {"code": "invalid", "message": "variants[1].weight: must be in [0, 1], got -0.5", "request_id": "…"}}
//
// Requests carry "Authorization: Bearer KEY"; a missing or unknown key is 401 and a
// key whose role does not allow the route is 403.
package api
