package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// shareIn is the body of POST /v1/experiments/KEY/shares.
type shareIn struct {
	ExpiresIn experiment.Duration `json:"expires_in,omitempty" doc:"how long the link works, e.g. \"30d\" (the default) or \"72h\"; at most 366d"`
}

// shareOut is a created share link: the only time its token and URL are shown.
type shareOut struct {
	*experiment.ShareLink
	Token string `json:"token"`
	URL   string `json:"url" doc:"the report page, relative to the server: /shared/TOKEN/report.html"`
}

type shareList struct {
	Shares []*experiment.ShareLink `json:"shares"`
}

// defaultShareLifetime is how long a share link works unless the request says.
const defaultShareLifetime = 30 * 24 * time.Hour

// shareRoutes: analysts create, list and revoke links; the links themselves need
// no key and always show differentially private numbers.
func (s *Server) shareRoutes() {
	const analyst = experiment.RoleAnalyst
	s.route(http.MethodPost, "/v1/experiments/:key/shares", analyst, s.createShare, op{
		Summary: "Create a share link to the experiment's report (DP numbers only)", Request: shareIn{}, Response: shareOut{}, Status: http.StatusCreated,
		Description: "Whoever holds the link sees the report, its charts and its CSV with differentially private numbers " +
			"only, without an API key: the experiment's release of the current period, the same for every reader of the " +
			"period (a link's view makes and spends a release only when it is the period's first read). The token is shown once; only its hash is stored. Anyone with the link can read the report: " +
			"share it like a password, and revoke it when it is no longer needed."})
	s.route(http.MethodGet, "/v1/experiments/:key/shares", analyst, s.listShares, op{
		Summary: "List the share links of an experiment (revoked and expired ones included; no tokens)", Response: shareList{}})
	s.route(http.MethodDelete, "/v1/shares/:id", analyst, s.revokeShare, op{
		Summary: "Revoke a share link: it stops working at once", Status: http.StatusNoContent})

	const shared = "The shared report (DP numbers only) behind a share link; no API key. Unknown, expired and revoked links answer 404."
	s.route(http.MethodGet, "/shared/:token/report.html", Public, s.getReportHTML, op{
		Summary: "Shared report page", Description: shared, ContentType: "text/html"})
	s.route(http.MethodGet, "/shared/:token/plots/:file", Public, s.getPlot, op{
		Summary: "One chart of the shared report: NAME.png, NAME.svg or NAME.pdf", Description: shared, ContentType: "image/svg+xml"})
	s.route(http.MethodGet, "/shared/:token/results.csv", Public, s.getResultsCSV, op{
		Summary: "The shared report's results table as CSV", Description: shared, ContentType: "text/csv"})
}

func (s *Server) createShare(c echo.Context) error {
	var in shareIn
	if err := s.decode(c, &in); err != nil {
		return err
	}
	life := time.Duration(in.ExpiresIn)
	if life == 0 {
		life = defaultShareLifetime
	}
	l, token, err := s.db.CreateShareLink(c.Request().Context(), actor(c), c.Param("key"), life)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, shareOut{ShareLink: l, Token: token, URL: "/shared/" + token + "/report.html"})
}

func (s *Server) listShares(c echo.Context) error {
	ctx := c.Request().Context()
	if _, err := s.db.GetExperiment(ctx, c.Param("key")); err != nil {
		return err
	}
	ls, err := s.db.ListShareLinks(ctx, c.Param("key"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, shareList{ls})
}

func (s *Server) revokeShare(c echo.Context) error {
	if err := s.db.RevokeShareLink(c.Request().Context(), actor(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// logPath is the request path as logged: a share link's token is a secret, so
// it is left out of the logs however the path is spelled ("//shared/TOKEN",
// "/./shared/TOKEN", "/SHARED/TOKEN"): the segment after any "shared" segment, and
// any segment that looks like a token (share tokens start with "lsh_"), is
// replaced by "…". Empty segments are dropped, so the logged path is the cleaned one.
func logPath(c echo.Context) string {
	segs := strings.Split(c.Request().URL.Path, "/")
	out := make([]string, 0, len(segs))
	redactNext := false
	for _, seg := range segs {
		if seg == "" || seg == "." {
			continue
		}
		switch {
		case redactNext, len(seg) >= 4 && strings.EqualFold(seg[:4], store.ShareTokenPrefix):
			seg = "…"
			redactNext = false
		case strings.EqualFold(seg, "shared"):
			redactNext = true
		}
		out = append(out, seg)
	}
	return "/" + strings.Join(out, "/")
}
