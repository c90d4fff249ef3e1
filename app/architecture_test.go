package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/internal/e2e"
)

const modulePath = "github.com/mailroom/mailroom"

// listedPackage is the part of `go list -json` the architecture rules read.
type listedPackage struct {
	ImportPath string
	Name       string
	Standard   bool
	Imports    []string
	Deps       []string
	Error      *struct{ Err string }
}

// TestArchitecture enforces the module boundaries on the real import graph:
//   - a package under modules/X imports another module Y only through
//     modules/Y/contract;
//   - contract packages import only the standard library;
//   - platform/... depends (even indirectly) on no module and not on app;
//   - nothing imports app but the main package and test kits (apptest);
//   - the main package imports no module and not platform/outbox: it parses
//     arguments, loads the config and dispatches, and app assembles the rest
//     (the CLI's commands included, see app.Admin);
//   - a module's use cases (modules/X/internal/app) import no transport: not
//     Watermill, Echo or Sarama, nor platform/broker or platform/httpserver that
//     wrap them. They take plain values; the module's ports adapt messages and
//     requests to them.
//
// Only non-test imports count: tests may reach across to assemble a scenario.
func TestArchitecture(t *testing.T) {
	t.Parallel()
	pkgs := goListDeps(t, modulePath+"/...")
	if len(pkgs) == 0 {
		t.Fatal("go list returned no packages")
	}
	ours := 0
	for _, p := range pkgs {
		if isOurs(p.ImportPath) {
			ours++
		}
	}
	for _, want := range []string{"app", "platform/outbox", "modules/emails", "modules/delivery/contract"} {
		if !slices.ContainsFunc(pkgs, func(p listedPackage) bool { return p.ImportPath == modulePath+"/"+want }) {
			t.Fatalf("go list did not list %s/%s: the rules would check nothing", modulePath, want)
		}
	}
	for _, v := range architectureViolations(pkgs) {
		t.Error(v)
	}
	t.Logf("checked %d of our packages (%d packages with dependencies)", ours, len(pkgs))
}

// TestArchitectureRulesCatchViolations feeds the rules a made-up graph breaking each
// of them once, so a rule that silently stopped matching is noticed.
func TestArchitectureRulesCatchViolations(t *testing.T) {
	t.Parallel()
	m := func(s string) string { return modulePath + "/" + s }
	pkgs := []listedPackage{
		{ImportPath: "time", Standard: true},
		{ImportPath: "github.com/labstack/echo/v4"},
		{ImportPath: modulePath, Name: "main", Imports: []string{m("app"), m("modules/apikeys"), m("platform/outbox")}}, // 9, 10
		{ImportPath: m("app"), Name: "app", Imports: []string{m("modules/emails")}},
		{ImportPath: m("app/apptest"), Name: "apptest", Imports: []string{m("app")}},
		{ImportPath: m("modules/emails"), Name: "emails", Imports: []string{m("modules/emails/internal/app")}},
		{ImportPath: m("modules/emails/internal/app"), Name: "app", Imports: []string{
			m("modules/delivery/contract"), // fine
			m("modules/delivery"),          // 1: another module's root
			m("modules/emails/internal/domain"),
		}},
		{ImportPath: m("modules/emails/internal/domain"), Name: "domain"},
		{ImportPath: m("modules/delivery"), Name: "delivery", Imports: []string{m("modules/delivery/internal/app")}},
		{ImportPath: m("modules/delivery/internal/app"), Name: "app", Imports: []string{m("modules/emails/internal/domain"), // 2
			"github.com/ThreeDotsLabs/watermill/message", m("platform/broker"), "github.com/labstack/echo/v4"}}, // 11, 12, 13
		{ImportPath: m("modules/delivery/internal/ports"), Name: "ports", Imports: []string{"github.com/ThreeDotsLabs/watermill/message"}}, // fine
		{ImportPath: m("modules/delivery/contract"), Name: "contract", Imports: []string{"time", "github.com/labstack/echo/v4"}},           // 3
		{ImportPath: m("modules/emails/contract"), Name: "contract", Imports: []string{m("platform/apperr")}},                              // 4
		{ImportPath: m("platform/apperr"), Name: "apperr"},
		{ImportPath: m("platform/outbox"), Name: "outbox", Imports: []string{m("platform/helper")}, Deps: []string{m("platform/helper"), m("modules/emails/contract")}}, // 5: indirectly
		{ImportPath: m("platform/helper"), Name: "helper", Imports: []string{m("modules/emails/contract")}},                                                             // 6
		{ImportPath: m("platform/config"), Name: "config", Imports: []string{m("app")}, Deps: []string{m("app")}},                                                       // 7, 8
	}
	got := architectureViolations(pkgs)
	wants := []string{
		"modules/emails/internal/app imports " + m("modules/delivery") + ",",
		"modules/delivery/internal/app imports " + m("modules/emails/internal/domain"),
		"modules/delivery/contract imports github.com/labstack/echo/v4",
		"modules/emails/contract imports " + m("platform/apperr"),
		"platform/outbox depends on " + m("modules/emails/contract"),
		"platform/helper depends on " + m("modules/emails/contract"),
		"platform/config depends on " + m("app"),
		"platform/config imports " + m("app") + ": only",
		"main package imports " + m("modules/apikeys") + ": the main package",
		"main package imports " + m("platform/outbox") + ": the main package",
		"modules/delivery/internal/app imports github.com/ThreeDotsLabs/watermill/message: a module's internal/app",
		"modules/delivery/internal/app imports " + m("platform/broker") + ": a module's internal/app",
		"modules/delivery/internal/app imports github.com/labstack/echo/v4: a module's internal/app",
	}
	for _, w := range wants {
		if !slices.ContainsFunc(got, func(v string) bool { return strings.Contains(v, w) }) {
			t.Errorf("no violation mentioning %q; got:\n%s", w, strings.Join(got, "\n"))
		}
	}
	if len(got) != len(wants) {
		t.Errorf("%d violations, want %d:\n%s", len(got), len(wants), strings.Join(got, "\n"))
	}
}

// architectureViolations applies the rules to a `go list -deps` listing.
func architectureViolations(pkgs []listedPackage) []string {
	standard := map[string]bool{}
	for _, p := range pkgs {
		if p.Standard {
			standard[p.ImportPath] = true
		}
	}
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	for _, p := range pkgs {
		if !isOurs(p.ImportPath) {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, modulePath), "/")
		if p.Error != nil {
			add("%s: go list: %s", rel, p.Error.Err)
		}
		mod, _ := moduleOf(p.ImportPath)
		for _, imp := range p.Imports {
			// 1. Across modules only through the other module's contract.
			if other, sub := moduleOf(imp); mod != "" && other != "" && other != mod && sub != "contract" {
				add("%s imports %s, another module's internals: modules/%s may use only modules/%s/contract", rel, imp, mod, other)
			}
			// 2. Contracts are plain data: standard library only.
			if isContract(p.ImportPath) && !standard[imp] && imp != "C" {
				add("%s imports %s: a contract package may import only the standard library", rel, imp)
			}
			// 4. app is the composition root: only main and test kits use it.
			if (imp == modulePath+"/app" || strings.HasPrefix(imp, modulePath+"/app/")) &&
				!strings.HasPrefix(p.ImportPath, modulePath+"/app/") && p.ImportPath != modulePath+"/app" &&
				p.Name != "main" && !isTestKit(p.ImportPath) {
				add("%s imports %s: only the main package and test kits may import app", rel, imp)
			}
			// 6. Use cases take plain values: transports live in ports/.
			if isUseCases(p.ImportPath) && isTransport(imp) {
				add("%s imports %s: a module's internal/app holds use cases, which take plain values; adapt the transport in its ports/", rel, imp)
			}
			// 5. The command only parses, loads and dispatches: app assembles.
			if p.ImportPath == modulePath {
				if m, _ := moduleOf(imp); m != "" || imp == modulePath+"/platform/outbox" {
					add("main package imports %s: the main package may not build modules or the outbox; app assembles them (app.Admin for the CLI)", imp)
				}
			}
		}
		// 3. The platform knows nothing of modules or app, even indirectly.
		if strings.HasPrefix(p.ImportPath, modulePath+"/platform/") {
			for _, dep := range slices.Concat(p.Imports, p.Deps) {
				if m, _ := moduleOf(dep); m != "" || dep == modulePath+"/app" || strings.HasPrefix(dep, modulePath+"/app/") {
					add("%s depends on %s: platform must not depend on modules or app", rel, dep)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// isUseCases is a module's internal/app package, or one below it.
func isUseCases(path string) bool {
	m, sub := moduleOf(path)
	rest := strings.TrimPrefix(path, modulePath+"/modules/"+m+"/")
	return m != "" && sub == "internal" && (rest == "internal/app" || strings.HasPrefix(rest, "internal/app/"))
}

// transports are the import paths of message and HTTP transports, and of the
// platform packages that wrap them.
var transports = []string{"github.com/ThreeDotsLabs/watermill", "github.com/labstack/echo", "github.com/IBM/sarama",
	modulePath + "/platform/broker", modulePath + "/platform/httpserver"}

func isTransport(path string) bool {
	return slices.ContainsFunc(transports, func(t string) bool { return path == t || strings.HasPrefix(path, t+"/") })
}

func isOurs(path string) bool { return path == modulePath || strings.HasPrefix(path, modulePath+"/") }

// moduleOf splits github.com/mailroom/mailroom/modules/X/rest into X and the first
// element of rest ("contract", "internal", or "" for the module's root package).
func moduleOf(path string) (module, sub string) {
	rest, ok := strings.CutPrefix(path, modulePath+"/modules/")
	if !ok {
		return "", ""
	}
	module, rest, _ = strings.Cut(rest, "/")
	sub, _, _ = strings.Cut(rest, "/")
	return module, sub
}

func isContract(path string) bool {
	m, sub := moduleOf(path)
	return m != "" && sub == "contract"
}

// isTestKit is a package that exists to help tests, such as app/apptest.
func isTestKit(path string) bool {
	last := path[strings.LastIndex(path, "/")+1:]
	return strings.HasSuffix(last, "test")
}

// goListDeps runs `go list -e -deps -json pattern` and decodes its stream of objects.
func goListDeps(t *testing.T, pattern string) []listedPackage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2e.GoTool(), "list", "-e", "-deps", "-json=ImportPath,Name,Standard,Imports,Deps,Error", pattern)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}
