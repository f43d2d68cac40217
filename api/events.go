package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
)

// MaxEventBatch is the most events one POST /v1/events may carry.
const MaxEventBatch = 10_000

// eventIn is one outcome event.
type eventIn struct {
	EventID    string          `json:"event_id" required:"true" doc:"unique id of the event: a resent event is counted as a duplicate and stored once"`
	Unit       string          `json:"unit" required:"true" doc:"the randomization unit (user id, device id, ...)"`
	Type       string          `json:"type" required:"true" doc:"event type, matched by metric definitions (event_type)"`
	TS         time.Time       `json:"ts" required:"true" doc:"RFC 3339 time of the event"`
	Value      float64         `json:"value" doc:"numeric value (e.g. revenue); absent: 0"`
	Properties json.RawMessage `json:"properties,omitempty" doc:"optional JSON object"`
}

type eventBatch struct {
	Events []eventIn `json:"events" required:"true"`
}

type eventsAccepted struct {
	Accepted   int `json:"accepted" doc:"new events stored"`
	Duplicates int `json:"duplicates" doc:"events whose event_id was already stored or repeated in the batch"`
}

// eventRoutes ingest outcome events; ingest keys (and admins).
func (s *Server) eventRoutes() {
	s.route(http.MethodPost, "/v1/events", experiment.RoleIngest, s.postEvents, op{
		Summary: "Ingest a batch of outcome events (at most 10,000)", Request: eventBatch{}, Response: eventsAccepted{},
		Description: "Send {\"events\": [...]} as application/json, or one event object a line with " +
			"Content-Type: application/x-ndjson. The batch is stored in one transaction, all or nothing: " +
			"a bad row is 400 naming events[i].field (JSON) or the line (NDJSON). event_id makes ingest " +
			"idempotent: a resent batch adds nothing and the answer counts it as duplicates. " +
			"More than 10,000 events is 413. The answer comes after the commit."})
}

func (s *Server) postEvents(c echo.Context) error {
	const op = "api.events"
	b, err := s.readBody(c)
	if err != nil {
		return err
	}
	var in []eventIn
	var lines []int // NDJSON: the line of each event
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if isNDJSON(mt) {
		if in, lines, err = decodeNDJSONEvents(b); err != nil {
			return err
		}
	} else {
		var batch struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := decodeJSON(b, &batch); err != nil {
			return err
		}
		if batch.Events == nil {
			return experiment.E(op, experiment.Invalid, experiment.Field("events"), experiment.Errorf("is required: send {\"events\": [...]}"))
		}
		if len(batch.Events) > MaxEventBatch {
			return experiment.E(op, experiment.TooLarge, experiment.Field("events"),
				experiment.Errorf("%d events in one request; the limit is %d: split the batch", len(batch.Events), MaxEventBatch))
		}
		in = make([]eventIn, len(batch.Events))
		for i, raw := range batch.Events {
			if err := decodeEvent(raw, &in[i], fmt.Sprintf("events[%d]", i)); err != nil {
				return err
			}
		}
	}
	if len(in) > MaxEventBatch {
		return experiment.E(op, experiment.TooLarge, experiment.Field("events"),
			experiment.Errorf("%d events in one request; the limit is %d: split the batch", len(in), MaxEventBatch))
	}
	evs := make([]experiment.Event, len(in))
	for i, e := range in {
		evs[i] = experiment.Event{EventID: e.EventID, Unit: e.Unit, Type: e.Type, TS: e.TS, Value: e.Value, Properties: e.Properties}
	}
	acc, dup, err := s.db.IngestEvents(c.Request().Context(), evs)
	if err != nil {
		return ndjsonField(err, lines)
	}
	return c.JSON(http.StatusOK, eventsAccepted{Accepted: acc, Duplicates: dup})
}

// decodeNDJSONEvents decodes one event a line, strictly; an error names the line.
// It stops counting past MaxEventBatch+1 lines so that the caller answers 413.
func decodeNDJSONEvents(b []byte) ([]eventIn, []int, error) {
	const op = "api.events"
	var out []eventIn
	var lines []int
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), len(b)+1)
	line := 0
	for sc.Scan() {
		line++
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		if len(out) == MaxEventBatch {
			return append(out, eventIn{}), nil, nil
		}
		var e eventIn
		if err := decodeEvent(l, &e, fmt.Sprintf("line %d", line)); err != nil {
			return nil, nil, err
		}
		out = append(out, e)
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, experiment.E(op, experiment.Invalid, experiment.Errorf("reading NDJSON: %v", err))
	}
	return out, lines, nil
}

// ndjsonField renames the field "events[i].f" of a store error to "line N.f",
// the line of event i, for an NDJSON body (lines not nil).
func ndjsonField(err error, lines []int) error {
	var le *experiment.Error
	if lines == nil || !errors.As(err, &le) {
		return err
	}
	rest, ok := strings.CutPrefix(le.Field, "events[")
	if !ok {
		return err
	}
	num, after, ok := strings.Cut(rest, "]")
	i, cerr := strconv.Atoi(num)
	if !ok || cerr != nil || i < 0 || i >= len(lines) {
		return err
	}
	return experiment.E("api.events", le.Kind, experiment.Field(fmt.Sprintf("line %d%s", lines[i], after)), le.Err)
}

// decodeEvent strictly decodes one event; an error names where (events[i] or
// line N) and the field, including unparseable timestamps.
func decodeEvent(b []byte, e *eventIn, where string) error {
	const op = "api.events"
	var raw struct {
		EventID    string          `json:"event_id"`
		Unit       string          `json:"unit"`
		Type       string          `json:"type"`
		TS         json.RawMessage `json:"ts"`
		Value      float64         `json:"value"`
		Properties json.RawMessage `json:"properties"`
	}
	if err := decodeJSON(b, &raw); err != nil {
		field := where
		var le *experiment.Error
		if errors.As(err, &le) && le.Field != "" {
			field += "." + le.Field
		}
		msg := err.Error()
		if errors.As(err, &le) {
			msg = le.Err.Error()
		}
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf("%s", msg))
	}
	*e = eventIn{EventID: raw.EventID, Unit: raw.Unit, Type: raw.Type, Value: raw.Value, Properties: raw.Properties}
	if len(raw.TS) == 0 || string(raw.TS) == "null" {
		return experiment.E(op, experiment.Invalid, experiment.Field(where+".ts"), experiment.Errorf("is required (an RFC 3339 timestamp)"))
	}
	if err := json.Unmarshal(raw.TS, &e.TS); err != nil {
		return experiment.E(op, experiment.Invalid, experiment.Field(where+".ts"), experiment.Errorf("is not an RFC 3339 timestamp: %s", raw.TS))
	}
	return nil
}
