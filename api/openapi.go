package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
)

// op is the OpenAPI description of a route, given where the route is declared.
type op struct {
	Summary      string
	Description  string
	Also         []experiment.Role // roles accepted besides the route's main one
	Query        []param           // query parameters
	Request      any               // a value of the JSON request body's type; nil for none
	OptionalBody bool              // the request body may be absent
	Response     any               // a value of the JSON success body's type; nil for none
	Status       int               // success status, default 200
	ContentType  string            // success content type when not JSON (e.g. text/plain)
}

// param is a query parameter.
type param struct {
	Name        string
	Type        string // "string", "integer", "boolean"
	Required    bool
	Description string
}

// openAPIPath turns an echo pattern (/v1/experiments/:key) into an OpenAPI path
// (/v1/experiments/{key}) and lists its path parameters.
func openAPIPath(p string) (string, []string) {
	parts := strings.Split(p, "/")
	var names []string
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			names = append(names, s[1:])
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/"), names
}

// openAPI builds the OpenAPI 3.0 document of every declared route.
func (s *Server) openAPI() map[string]any {
	sg := &schemaGen{components: map[string]any{}, names: map[reflect.Type]string{}}
	errRef := sg.schema(reflect.TypeOf(errorBody{}))
	errResp := func(desc string) map[string]any {
		return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": errRef}}}
	}
	paths := map[string]any{}
	for _, r := range s.table {
		path, pathParams := openAPIPath(r.path)
		item, _ := paths[path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[path] = item
		}
		o := r.op
		var params []any
		for _, name := range pathParams {
			params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range o.Query {
			t := q.Type
			if t == "" {
				t = "string"
			}
			params = append(params, map[string]any{"name": q.Name, "in": "query", "required": q.Required,
				"description": q.Description, "schema": map[string]any{"type": t}})
		}
		status := o.Status
		if status == 0 {
			status = http.StatusOK
		}
		success := map[string]any{"description": http.StatusText(status)}
		switch {
		case o.ContentType != "":
			success["content"] = map[string]any{o.ContentType: map[string]any{"schema": map[string]any{"type": "string"}}}
		case o.Response != nil:
			success["content"] = map[string]any{"application/json": map[string]any{"schema": sg.schema(reflect.TypeOf(o.Response))}}
		}
		responses := map[string]any{itoa(status): success, "default": errResp("error (see the code and message)")}
		desc := o.Description
		roles := r.roles()
		operation := map[string]any{
			"summary":     o.Summary,
			"operationId": operationID(r.method, r.path),
			"responses":   responses,
		}
		if len(roles) == 0 {
			operation["security"] = []any{}
		} else {
			responses["401"] = errResp("missing, unknown or revoked API key")
			responses["403"] = errResp("the key's role does not allow this route")
			rs := make([]string, len(roles))
			for i, role := range roles {
				rs[i] = string(role)
			}
			operation["x-lift-roles"] = rs
			if desc != "" {
				desc += "\n\n"
			}
			desc += "Needs an API key with " + roleList(roles) + "."
		}
		if o.Request != nil {
			responses["400"] = errResp("invalid input; the message names the field")
			operation["requestBody"] = map[string]any{"required": !o.OptionalBody, "content": map[string]any{
				"application/json": map[string]any{"schema": sg.schema(reflect.TypeOf(o.Request))}}}
		}
		if desc != "" {
			operation["description"] = desc
		}
		if len(params) > 0 {
			operation["parameters"] = params
		}
		item[strings.ToLower(r.method)] = operation
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "Lift API",
			"version":     "v1",
			"description": "Experimentation and incrementality platform: registry, assignment, exposures.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas":         sg.components,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "An API key: Authorization: Bearer KEY"}},
		},
		"security": []any{map[string]any{"bearer": []any{}}},
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, part := range strings.Split(path, "/") {
		if part == "" || part == "v1" {
			continue
		}
		part = strings.TrimPrefix(part, ":")
		for _, w := range strings.FieldsFunc(part, func(r rune) bool { return r == '.' || r == '_' || r == '-' }) {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// schemaGen turns Go types into OpenAPI schemas, named struct types into
// components referenced with $ref.
type schemaGen struct {
	components map[string]any
	names      map[reflect.Type]string
}

var (
	timeType     = reflect.TypeOf(time.Time{})
	rawType      = reflect.TypeOf(json.RawMessage(nil))
	durationType = reflect.TypeOf(experiment.Duration(0))
	metricRef    = reflect.TypeOf(experiment.MetricRef{})
)

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case rawType:
		return map[string]any{"description": "any JSON value"}
	case durationType:
		return map[string]any{"type": "string", "description": `a duration: numbers with units ns, us, ms, s, min, h, d, w ("90d", "36h", "1h30min"; "m" alone is refused as ambiguous), or a number of seconds`, "example": "90d"}
	case metricRef:
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "string", "description": "the metric's name"},
			map[string]any{"type": "object", "properties": map[string]any{
				"name": map[string]any{"type": "string"}, "primary": map[string]any{"type": "boolean"}}},
		}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		inner := g.schema(t.Elem())
		if _, isRef := inner["$ref"]; isRef {
			return map[string]any{"allOf": []any{inner}, "nullable": true}
		}
		out := map[string]any{"nullable": true}
		for k, v := range inner {
			out[k] = v
		}
		return out
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Interface:
		return map[string]any{"description": "any JSON value"}
	case reflect.Struct:
		name, ok := g.names[t]
		if !ok {
			name = g.componentName(t)
			g.names[t] = name
			g.components[name] = map[string]any{} // placeholder against recursion
			g.components[name] = g.object(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

func (g *schemaGen) componentName(t reflect.Type) string {
	n := t.Name()
	if n == "" {
		n = "Object"
	}
	n = strings.ToUpper(n[:1]) + n[1:]
	base := n
	for i := 2; ; i++ {
		if _, taken := g.components[n]; !taken {
			return n
		}
		n = base + itoa(i)
	}
}

func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	g.fields(t, props, &required)
	out := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		sort.Strings(required)
		out["required"] = required
	}
	return out
}

// fields adds the JSON fields of struct t, flattening embedded structs. A field
// tagged `required:"true"` is listed as required.
func (g *schemaGen) fields(t reflect.Type, props map[string]any, required *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if ft := f.Type; f.Anonymous && name == "" && (ft.Kind() == reflect.Struct || ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct) {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			g.fields(ft, props, required)
			continue
		}
		if name == "" {
			name = f.Name
		}
		sch := g.schema(f.Type)
		if d := f.Tag.Get("doc"); d != "" {
			if _, isRef := sch["$ref"]; isRef {
				sch = map[string]any{"allOf": []any{sch}, "description": d}
			} else {
				sch["description"] = d
			}
		}
		props[name] = sch
		if f.Tag.Get("required") == "true" {
			*required = append(*required, name)
		}
	}
}
