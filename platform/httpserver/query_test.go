package httpserver_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/httpserver"
)

// knownQuery runs KnownQuery on a GET with the raw query string query.
func knownQuery(query string, names ...string) error {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.URL.RawQuery = query
	return httpserver.KnownQuery(echo.New().NewContext(req, httptest.NewRecorder()), names...)
}

func TestKnownQueryLetsThroughTheParametersTheRouteTakes(t *testing.T) {
	for _, q := range []string{
		"",
		"status=sent",
		"status=sent&tag=welcome&limit=10&cursor=x",
		"status=&tag=",   // empty values are the route's to judge
		"status",         // a name without "=" is an empty value
		"&&status=sent&", // empty pairs are nothing
		"st%61tus=sent",  // an escaped name is the name
	} {
		if err := knownQuery(q, "status", "tag", "limit", "cursor"); err != nil {
			t.Errorf("?%s refused: %v", q, err)
		}
	}
}

func TestKnownQueryRefusesWhatTheRouteWouldNotReadAsMeant(t *testing.T) {
	takes := []string{"status", "tag", "limit", "cursor"}
	long := strings.Repeat("x", 5000)
	cases := []struct {
		name, query string
		names       []string
		field       string
		message     string
	}{
		{"an unknown parameter", "to=x", takes, "to",
			"to: unknown query parameter; this route takes status, tag, limit, cursor"},
		{"an unknown parameter beside known ones", "status=sent&q=hello&limit=5", takes, "q",
			"q: unknown query parameter; this route takes status, tag, limit, cursor"},
		{"the first of several unknown ones in sorted order", "zeta=1&reason=x&alpha=2", takes, "alpha",
			"alpha: unknown query parameter; this route takes status, tag, limit, cursor"},
		{"a name differing only in case", "Status=sent", takes, "Status",
			"Status: unknown query parameter; this route takes status, tag, limit, cursor"},
		{"any parameter where the route takes none", "limit=5", nil, "limit",
			"limit: unknown query parameter; this route takes no query parameters"},
		{"a known parameter given twice", "status=sent&status=dead", takes, "status",
			"status: given 2 times; give it once"},
		{"a known parameter given twice, once empty", "tag=a&tag=", takes, "tag",
			"tag: given 2 times; give it once"},
		{"a huge unknown name, echoed cut short", long + "=1", takes, apperr.Clip(long),
			apperr.Clip(long) + ": unknown query parameter; this route takes status, tag, limit, cursor"},
		{"a parameter with no name", "=x", takes, "",
			"query string: a parameter has no name; this route takes status, tag, limit, cursor"},
		{"pairs joined by a semicolon, which net/url would drop", "status=sent;to=x", takes, "",
			"query string does not parse: invalid semicolon separator in query"},
		{"a bad escape, which net/url would drop", "st%zztus=sent", takes, "",
			`query string does not parse: invalid URL escape "%zz"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := knownQuery(tc.query, tc.names...)
			e, ok := apperr.As(err)
			if !ok {
				t.Fatalf("?%.80s: error %v, want an apperr", tc.query, err)
			}
			if e.Code != apperr.CodeInvalidField || e.Field != tc.field || e.Message != tc.message {
				t.Errorf("?%.80s: %s field %q message %q, want invalid_field field %q message %q",
					tc.query, e.Code, e.Field, e.Message, tc.field, tc.message)
			}
		})
	}
}

func TestKnownQueryAnswersOneRequestTheSameEveryTime(t *testing.T) {
	// Map order differs from run to run; the answer must not.
	for range 50 {
		err := knownQuery("m=1&b=2&status=a&status=b&a=3&z=4", "status")
		if e, ok := apperr.As(err); !ok || e.Field != "a" {
			t.Fatalf("error %v, want the first name in sorted order, a", err)
		}
	}
}
