package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// errorBody is the JSON answer of every failed request.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`       // stable code: the experiment.Kind string, e.g. "invalid"
	Message   string `json:"message"`    // for people; names the offending field when there is one
	RequestID string `json:"request_id"` // the X-Request-ID of the request, to find it in the logs
}

// statusClientClosed is the status logged for a request whose client went away
// before the answer (nginx's 499): a 4xx, so it is logged at info, not as an error.
const statusClientClosed = 499

// clientGone wraps the error of a request whose client closed the connection.
type clientGone struct{ err error }

func (e *clientGone) Error() string { return "client closed the connection: " + e.err.Error() }
func (e *clientGone) Unwrap() error { return e.err }

// statusOf maps an error kind to its HTTP status. It is the one place where kinds
// meet status codes.
func statusOf(k experiment.Kind) int {
	switch k {
	case experiment.Invalid:
		return http.StatusBadRequest
	case experiment.NotFound:
		return http.StatusNotFound
	case experiment.Conflict, experiment.BudgetExceeded:
		return http.StatusConflict
	case experiment.InsufficientData:
		return http.StatusUnprocessableEntity
	case experiment.Unauthorized:
		return http.StatusUnauthorized
	case experiment.Forbidden:
		return http.StatusForbidden
	case experiment.TooLarge:
		return http.StatusRequestEntityTooLarge
	case experiment.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// describe returns the status, code and client-facing message of err. Internal
// errors show a generic message; their details only go to the log.
func describe(err error) (status int, code, msg string) {
	var gone *clientGone
	if errors.As(err, &gone) {
		return statusClientClosed, "canceled", "the client closed the connection"
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status = he.Code
		switch status {
		case http.StatusNotFound:
			code = experiment.NotFound.String()
		case http.StatusMethodNotAllowed:
			code = "method_not_allowed"
		case http.StatusRequestEntityTooLarge:
			code = experiment.TooLarge.String()
		case http.StatusUnauthorized:
			code = experiment.Unauthorized.String()
		case http.StatusForbidden:
			code = experiment.Forbidden.String()
		default:
			if status >= 500 {
				code = experiment.Internal.String()
			} else {
				code = experiment.Invalid.String()
			}
		}
		msg = fmt.Sprint(he.Message)
		if status == http.StatusNotFound {
			msg = "no such route"
		}
		return status, code, msg
	}
	kind := experiment.KindOf(err)
	if kind == experiment.Internal || kind == experiment.Other {
		if errors.Is(err, context.DeadlineExceeded) {
			return http.StatusServiceUnavailable, experiment.Unavailable.String(), "the request timed out; retry, or send a smaller batch"
		}
		if errors.Is(err, context.Canceled) {
			return statusClientClosed, "canceled", "the request was canceled"
		}
		if store.IsOutOfMemory(err) {
			// DuckDB spilled what it could and still ran past its memory limit.
			return http.StatusServiceUnavailable, experiment.Unavailable.String(),
				"the database ran out of memory under its limit (--duckdb-memory-limit) for this query; retry later, or raise the limit"
		}
		return http.StatusInternalServerError, experiment.Internal.String(), "internal error; the server log has the details under this request_id"
	}
	var le *experiment.Error
	if errors.As(err, &le) {
		msg = le.Message()
	} else {
		msg = err.Error()
	}
	return statusOf(kind), kind.String(), msg
}

// handleError writes err as the JSON error body, once. It is echo's
// HTTPErrorHandler and is also called by the observe middleware.
func (s *Server) handleError(err error, c echo.Context) {
	if err == nil || c.Response().Committed {
		return
	}
	status, code, msg := describe(err)
	rid := requestIDOf(c)
	if status >= 500 {
		s.log.Error("request failed", "request_id", rid, "method", c.Request().Method, "path", logPath(c), "error", err.Error())
	}
	if status == http.StatusUnauthorized {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="lift"`)
	}
	body := errorBody{errorDetail{Code: code, Message: msg, RequestID: rid}}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if werr := c.JSON(status, body); werr != nil {
		s.log.Warn("writing error response", "request_id", rid, "error", werr.Error())
	}
}
