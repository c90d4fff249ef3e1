package app_test

import (
	"encoding/json"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/apispec"
	"github.com/mailroom/mailroom/web"
)

func TestTheServedOpenAPIDocumentIsTheEmbeddedOneAndNeedsNoKey(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Config(t))
	r := in.Do(t, http.MethodGet, web.OpenAPIPath, nil, apptest.NoKey...)
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s without a key: %d %s", web.OpenAPIPath, r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var served, embedded any
	if err := json.Unmarshal(r.Body, &served); err != nil {
		t.Fatalf("the served document is not JSON: %v", err)
	}
	if err := yaml.Unmarshal(web.OpenAPIYAML, &embedded); err != nil {
		t.Fatalf("web/openapi.yaml: %v", err)
	}
	// Through JSON, so that YAML's ints and JSON's float64s compare alike.
	raw, err := json.Marshal(embedded)
	if err != nil {
		t.Fatal(err)
	}
	var want any
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(served, want) {
		t.Errorf("the served document differs from web/openapi.yaml")
	}
	if v, _ := served.(map[string]any)["openapi"].(string); v != "3.1.0" {
		t.Errorf("openapi: %q, want 3.1.0", v)
	}
	spec, err := apispec.Parse(r.Body)
	if err != nil {
		t.Fatalf("the served document does not parse as OpenAPI: %v", err)
	}
	for _, problem := range spec.Validate() {
		t.Errorf("the served document is not valid OpenAPI 3.1: %s", problem)
	}
}

func TestTheOpenAPIDocumentNamesTheScopeEachRouteNeeds(t *testing.T) {
	t.Parallel()
	spec, err := apispec.Mailroom()
	if err != nil {
		t.Fatal(err)
	}
	documented := spec.Scopes()
	// routeScope (auth_test.go) is what TestEveryAPIRouteAnswersByTheKeyItIsGiven
	// holds each route to; the document must say the same.
	for route, scope := range routeScope {
		method, path, _ := strings.Cut(route, " ")
		op := method + " " + documentedPath(path)
		if got, ok := documented[op]; !ok {
			t.Errorf("%s is not in web/openapi.yaml", op)
		} else if got != scope {
			t.Errorf("%s: web/openapi.yaml says scope %q, the app needs %q", op, got, scope)
		}
	}
	for op, scope := range documented {
		if strings.Contains(op, " /api/") && scope == "" {
			t.Errorf("%s: web/openapi.yaml says neither x-required-scope nor security: []", op)
		}
	}
}

// echoParam matches an Echo path parameter (":id") or wildcard ("*").
var echoParam = regexp.MustCompile(`:([A-Za-z_]+)|\*$`)

// documentedPath turns an Echo route path into the OpenAPI document's path:
// /api/emails/:id is /api/emails/{id}; the console's /static/* is /static/{file}.
func documentedPath(path string) string {
	return echoParam.ReplaceAllStringFunc(path, func(m string) string {
		if m == "*" {
			return "{file}"
		}
		return "{" + m[1:] + "}"
	})
}

func TestEveryRouteIsInTheOpenAPIDocument(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Config(t))
	spec, err := apispec.Mailroom()
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, op := range spec.Operations() {
		documented[op] = true
	}
	served := map[string]bool{}
	for _, r := range in.App.Routes() {
		if r.Method == echo.RouteNotFound {
			continue // the /api group's catch-all: the document's "no route" answers
		}
		op := r.Method + " " + documentedPath(r.Path)
		served[op] = true
		if !documented[op] {
			t.Errorf("the app serves %s (%s), which web/openapi.yaml does not document", op, r.Path)
		}
	}
	for _, op := range slices.Sorted(maps.Keys(documented)) {
		if !served[op] {
			t.Errorf("web/openapi.yaml documents %s, which the app does not serve", op)
		}
	}
	if !served["GET "+web.OpenAPIPath] || !strings.HasPrefix(web.OpenAPIPath, "/api/") {
		t.Errorf("the app does not serve GET %s", web.OpenAPIPath)
	}
}

// bareClient matches the ways a test can call a running app without a client
// whose transport is apispec's: the default client and a client built by hand.
var bareClient = regexp.MustCompile(`http\.DefaultClient|http\.Client\{|http\.(Get|Head|Post|PostForm)\(`)

// TestEveryTestClientChecksAgainstTheOpenAPIDocument keeps the OpenAPI check
// unavoidable: a test (or test kit) that calls the app with net/http's default
// client, or a client built by hand and not wrapped by apispec.Client, would send
// requests no one holds to the document. Use apptest.Do or apptest.Client (in app/,
// apispec.Client or e2e.NewHTTPClient). platform/ is left out: its tests serve
// bare Echo instances, not the app.
func TestEveryTestClientChecksAgainstTheOpenAPIDocument(t *testing.T) {
	t.Parallel()
	var files []string
	for _, root := range []string{".", "../modules", "../web"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return err
			case d.IsDir() && path == "internal/apispec":
				return filepath.SkipDir // the check itself
			case !d.IsDir() && strings.HasSuffix(path, ".go") &&
				(strings.HasSuffix(path, "_test.go") || strings.Contains(path, "apptest") || strings.Contains(path, "internal/e2e")):
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	files = append(files, "../main_test.go")
	if len(files) < 20 {
		t.Fatalf("found only %d test files: the walk looks in the wrong place", len(files))
	}
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if trimmed := strings.TrimSpace(line); strings.HasPrefix(trimmed, "//") || strings.Contains(line, "apispec.Client(") {
				continue
			}
			if bareClient.MatchString(line) && !strings.Contains(line, "bareClient") {
				t.Errorf("%s:%d calls HTTP with a client that skips the OpenAPI check; use apptest.Client or apispec.Client:\n\t%s",
					path, i+1, strings.TrimSpace(line))
			}
		}
	}
}
