package api

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
)

const ctxKey = "lift.key"

// Public marks a route that needs no API key (health, metrics, the OpenAPI document).
const Public experiment.Role = ""

// route is one declared route: its echo registration and its OpenAPI description.
type route struct {
	method string
	path   string // echo pattern, e.g. /v1/experiments/:key
	need   experiment.Role
	op     op
}

// route declares a route: it registers h on echo behind authentication and the
// role check, and records the route for /openapi.json. need is the role a key
// must allow (experiment.Role.Allows), or Public; o.Also lists further roles that
// are accepted.
func (s *Server) route(method, path string, need experiment.Role, h echo.HandlerFunc, o op) {
	r := route{method: method, path: path, need: need, op: o}
	if need != Public {
		h = s.authorize(r, h)
	}
	s.echo.Add(method, path, h)
	s.table = append(s.table, r)
}

// roles lists the roles accepted by the route, the needed one first.
func (r route) roles() []experiment.Role {
	if r.need == Public {
		return nil
	}
	return append([]experiment.Role{r.need}, r.op.Also...)
}

// authorize checks "Authorization: Bearer KEY" against the store and the key's role
// against the route: no or unknown key is Unauthorized (401), a key whose role
// allows none of the route's roles is Forbidden (403).
func (s *Server) authorize(r route, next echo.HandlerFunc) echo.HandlerFunc {
	roles := r.roles()
	return func(c echo.Context) error {
		const op = "api.auth"
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		if h == "" {
			return experiment.E(op, experiment.Unauthorized, experiment.Errorf("missing API key: send the header \"Authorization: Bearer KEY\""))
		}
		scheme, secret, ok := strings.Cut(h, " ")
		secret = strings.TrimSpace(secret)
		if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
			return experiment.E(op, experiment.Unauthorized, experiment.Errorf("the Authorization header must be \"Bearer KEY\""))
		}
		k, err := s.db.Authenticate(c.Request().Context(), secret)
		if err != nil {
			if experiment.KindOf(err) == experiment.Unauthorized {
				return experiment.E(op, experiment.Unauthorized, experiment.Errorf("unknown or revoked API key"))
			}
			return err
		}
		c.Set(ctxKey, k)
		for _, need := range roles {
			if k.Role.Allows(need) {
				return next(c)
			}
		}
		return experiment.E(op, experiment.Forbidden, experiment.Errorf("API key %q has role %q; %s %s needs %s", k.Name, k.Role, r.method, r.path, roleList(roles)))
	}
}

func roleList(rs []experiment.Role) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteString(" or ")
		}
		b.WriteString("role ")
		b.WriteString(string(r))
	}
	return b.String()
}

// keyOf returns the authenticated key of the request, nil on public routes.
func keyOf(c echo.Context) *experiment.APIKey {
	k, _ := c.Get(ctxKey).(*experiment.APIKey)
	return k
}

// actor names who made a change, for the audit log: the key's name.
func actor(c echo.Context) string {
	if k := keyOf(c); k != nil {
		return k.Name
	}
	return "anonymous"
}
