package web_test

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/httpserver"
)

// csp is the policy every answer carries: the console must work under it, so it
// has no inline script or style of its own.
const csp = httpserver.ContentSecurityPolicy

func TestTheConsoleIsServedByTheApp(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Config(t))

	t.Run("the page is HTML with the security headers, and needs no key", func(t *testing.T) {
		r := in.Do(t, http.MethodGet, "/", nil, apptest.NoKey...)
		if r.Status != http.StatusOK {
			t.Fatalf("GET /: %d %s", r.Status, r.Body)
		}
		for name, want := range map[string]string{
			"Content-Type":            "text/html; charset=utf-8",
			"Content-Security-Policy": csp,
			"X-Content-Type-Options":  "nosniff",
			"Cache-Control":           "no-cache",
		} {
			if got := r.Header.Get(name); got != want {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
		}
		if !strings.Contains(string(r.Body), `<script src="/static/app.js" type="module"></script>`) {
			t.Errorf("the page does not load /static/app.js:\n%s", r.Body)
		}
	})

	t.Run("each asset has its type", func(t *testing.T) {
		for path, want := range map[string]string{
			"/static/index.html":                     "text/html; charset=utf-8",
			"/static/app.js":                         "text/javascript; charset=utf-8",
			"/static/js/core.js":                     "text/javascript; charset=utf-8",
			"/static/style.css":                      "text/css; charset=utf-8",
			"/static/vendor/uplot/uPlot.iife.min.js": "text/javascript; charset=utf-8",
			"/static/favicon.svg":                    "image/svg+xml",
		} {
			r := in.Do(t, http.MethodGet, path, nil, apptest.NoKey...)
			if r.Status != http.StatusOK || len(r.Body) == 0 {
				t.Errorf("GET %s: %d, %d bytes", path, r.Status, len(r.Body))
			}
			if got := r.Header.Get("Content-Type"); got != want {
				t.Errorf("GET %s: Content-Type %q, want %q", path, got, want)
			}
			if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("GET %s: X-Content-Type-Options %q", path, got)
			}
		}
	})

	t.Run("an unchanged asset is a 304 to its ETag", func(t *testing.T) {
		r := in.Do(t, http.MethodGet, "/static/app.js", nil, apptest.NoKey...)
		etag := r.Header.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag")
		}
		r = in.Do(t, http.MethodGet, "/static/app.js", nil, "Authorization", "", "If-None-Match", etag)
		if r.Status != http.StatusNotModified {
			t.Errorf("If-None-Match %s: %d, want 304", etag, r.Status)
		}
	})

	t.Run("an unknown path under /static is a 404 in the contract's shape", func(t *testing.T) {
		for _, path := range []string{"/static/nope.js", "/static/", "/static/web.go", "/static/..%2fweb.go", "/static/app.js/x"} {
			r := in.Do(t, http.MethodGet, path, nil, apptest.NoKey...)
			if r.Status != http.StatusNotFound {
				t.Errorf("GET %s: %d %s, want 404", path, r.Status, r.Body)
				continue
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("GET %s: Content-Type %q, want JSON", path, ct)
			}
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			r.JSON(t, &body)
			if body.Error.Code != "not_found" || body.Error.Message == "" {
				t.Errorf("GET %s: %s, want code not_found with a message", path, r.Body)
			}
		}
	})

	t.Run("every /api call in the console's scripts has a route", func(t *testing.T) {
		routes := map[string]bool{}
		for _, r := range in.App.Routes() {
			// Every parameter as :id, as apiCalls writes the console's.
			routes[r.Method+" "+routeParam.ReplaceAllString(r.Path, ":id")] = true
		}
		calls := apiCalls(t)
		for _, c := range calls {
			if !routes[c] {
				t.Errorf("the console calls %s, which the app does not route", c)
			}
		}
		// Guards the pattern: if it stopped matching, the loop above checks nothing.
		for _, want := range []string{"GET /api/dead-letters", "POST /api/dead-letters/:id/replay",
			"DELETE /api/dead-letters/:id", "POST /api/dead-letters/replay", "GET /api/emails/:id"} {
			if !slices.Contains(calls, want) {
				t.Errorf("found no call %s in the console's scripts; found %q", want, calls)
			}
		}
	})
}

// apiCall matches the console's calls, all written api('METHOD', '/api/...'),
// with `/api/x/${...}` for a path parameter; a query string is not part of it.
var apiCall = regexp.MustCompile("api\\('([A-Z]+)', ['`](/api/[^'`?]*)")

// routeParam matches a path parameter of an Echo route (":delivery_id").
var routeParam = regexp.MustCompile(`:[a-z_]+`)

// apiCalls returns the console's calls as Echo names routes: "POST /api/dead-letters/:id/replay".
func apiCalls(t *testing.T) []string {
	t.Helper()
	var js string
	for _, name := range consoleScripts(t) {
		js += readStatic(t, name)
	}
	param := regexp.MustCompile(`\$\{[^}]*\}`)
	var out []string
	for _, m := range apiCall.FindAllStringSubmatch(js, -1) {
		out = append(out, m[1]+" "+param.ReplaceAllString(m[2], ":id"))
	}
	return out
}

// consoleScripts names the console's own scripts under static/ (not vendor/).
func consoleScripts(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob("static/js/*.js")
	if err != nil {
		t.Fatal(err)
	}
	out := []string{"app.js"}
	for _, n := range names {
		out = append(out, strings.TrimPrefix(n, "static/"))
	}
	return out
}

func readStatic(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("static/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The CSP would block these in the browser (and the browser test would see it);
// this says which line is wrong without starting one.
func TestTheConsoleHasNoInlineScriptStyleOrHTMLInjection(t *testing.T) {
	t.Parallel()
	html := readStatic(t, "index.html")
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(tag, ` src="/static/`) {
			t.Errorf("index.html has %s: a script must come from /static", tag)
		}
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script[^>]*>[^<]`), // a script with a body
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`(?i)(src|href)="(https?:)?//`),
	} {
		if loc := bad.FindStringIndex(html); loc != nil {
			t.Errorf("index.html has %q (%s): the CSP allows only files from /static", html[loc[0]:loc[1]], bad)
		}
	}
	for _, name := range consoleScripts(t) {
		js := readStatic(t, name)
		if name == "js/emails.js" {
			js = withoutTheSanitisedFrame(t, js)
		}
		for _, sink := range []string{".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('style'", "srcdoc"} {
			if strings.Contains(strings.ToLower(js), strings.ToLower(sink)) {
				t.Errorf("%s uses %s: API data must go on the page as text nodes", name, sink)
			}
		}
		if strings.Contains(js, "localStorage") {
			t.Errorf("%s uses localStorage: the key belongs in sessionStorage only", name)
		}
	}
}

// sanitisedFrame is the one statement of the console that turns API data into
// markup: emails.js puts an email's HTML body in its sandboxed preview frame,
// after DOMPurify.
const sanitisedFrame = "frame.srcdoc = clean.html;"

// withoutTheSanitisedFrame checks that emails.js sets a frame's document once,
// from what sanitise (DOMPurify, on our own instance) returned in the same
// function, and returns the script without that statement, for the sink check
// to find any other.
func withoutTheSanitisedFrame(t *testing.T, js string) string {
	t.Helper()
	at := strings.Index(js, sanitisedFrame)
	if at < 0 || strings.Count(js, sanitisedFrame) != 1 {
		t.Errorf("emails.js has %q %d times, want once (the email preview)", sanitisedFrame, strings.Count(js, sanitisedFrame))
		return js
	}
	fn := strings.LastIndex(js[:at], "\nfunction ")
	if fn < 0 || !strings.Contains(js[fn:at], "const clean = sanitise(") {
		t.Errorf("emails.js sets the frame's document from something other than sanitise() in the same function")
	}
	def := strings.Index(js, "\nfunction sanitise(")
	if def < 0 {
		t.Fatal("emails.js has no function sanitise")
	}
	end := strings.Index(js[def+1:], "\n}\n")
	if body := js[def : def+1+end]; end < 0 || !strings.Contains(body, "purifier.sanitize(") {
		t.Errorf("emails.js's sanitise does not call DOMPurify (purifier.sanitize)")
	}
	if !strings.Contains(js, "window.DOMPurify(window)") {
		t.Errorf("emails.js's purifier is not a DOMPurify instance")
	}
	return js[:at] + js[at+len(sanitisedFrame):]
}
