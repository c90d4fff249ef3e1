// Package apispec holds Mailroom's HTTP answers to its OpenAPI document
// (web/openapi.yaml) in tests. Every client the tests use to call a running app
// (apptest's Do, Send and Get, apptest.Client, the e2e load clients) sends its
// requests through Transport, which checks each request and its answer against the
// document and fails the test on anything the document does not describe: an
// unknown route, an undocumented status, a body or header that does not match. So
// the document cannot drift from the code: a route, field or status added without
// its entry fails the first test that meets it.
//
// The checks use github.com/pb33f/libopenapi-validator, which validates OpenAPI 3.1
// (JSON Schema 2020-12: type arrays with "null", const, unevaluatedProperties)
// request and response bodies, parameters and headers.
package apispec

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/mailroom/mailroom/web"
)

// Spec is a parsed OpenAPI document and a validator for exchanges against it. It is
// safe for concurrent use.
type Spec struct {
	doc       libopenapi.Document
	model     *v3.Document
	validator validator.Validator
	// errorSchema is components.schemas.Error, the body of every error answer,
	// which answers on no route of the document (404, 405, 501) must match too.
	errorSchema *base.Schema
	schemas     schema_validation.SchemaValidator
}

// Parse parses an OpenAPI 3.1 document (YAML or JSON) and builds its validator.
// Security requirements are not checked on requests: tests send requests with no
// key or a wrong one on purpose, and the document describes the 401 they get.
func Parse(doc []byte) (*Spec, error) {
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		return nil, fmt.Errorf("parse OpenAPI document: %w", err)
	}
	m, err := d.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("build OpenAPI model: %w", err)
	}
	opts := []config.Option{config.WithFormatAssertions(), config.WithoutSecurityValidation()}
	v, errs := validator.NewValidator(d, opts...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("build OpenAPI validator: %w", joinErrors(errs))
	}
	s := &Spec{doc: d, model: &m.Model, validator: v, schemas: schema_validation.NewSchemaValidator(opts...)}
	if m.Model.Components == nil || m.Model.Components.Schemas == nil {
		return nil, fmt.Errorf("the OpenAPI document has no components.schemas")
	}
	proxy := m.Model.Components.Schemas.GetOrZero("Error")
	if proxy == nil {
		return nil, fmt.Errorf("the OpenAPI document has no components.schemas.Error")
	}
	if s.errorSchema, err = proxy.BuildSchema(); err != nil {
		return nil, fmt.Errorf("components.schemas.Error: %w", err)
	}
	return s, nil
}

var mailroom = sync.OnceValues(func() (*Spec, error) { return Parse(web.OpenAPIYAML) })

// Mailroom is the document the app serves (web.OpenAPIYAML), parsed once per
// process.
func Mailroom() (*Spec, error) { return mailroom() }

// Validate checks a document against the OpenAPI specification of its version (3.1
// for Mailroom's) and returns every problem found.
func (s *Spec) Validate() []string {
	ok, errs := s.validator.ValidateDocument()
	if ok {
		return nil
	}
	return describe(errs)
}

// Operations lists the document's operations as "METHOD /path/{param}", sorted.
func (s *Spec) Operations() []string {
	var out []string
	if s.model.Paths == nil {
		return nil
	}
	for path, item := range s.model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

// Scopes gives each operation ("METHOD /path/{param}") the scope the document says
// it needs: "public" for one whose security is empty (no key), otherwise its
// x-required-scope ("send" or "admin"), or "" when it names none.
func (s *Spec) Scopes() map[string]string {
	out := map[string]string{}
	if s.model.Paths == nil {
		return out
	}
	for path, item := range s.model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			scope := ""
			if op.Security != nil && len(op.Security) == 0 {
				scope = "public"
			} else if op.Extensions != nil {
				if n := op.Extensions.GetOrZero("x-required-scope"); n != nil {
					scope = n.Value
				}
			}
			out[strings.ToUpper(method)+" "+path] = scope
		}
	}
	return out
}

// Exchange is one request and its answer, bodies read.
type Exchange struct {
	Request      *http.Request
	RequestBody  []byte
	Response     *http.Response
	ResponseBody []byte
}

// Check returns what the document does not describe of x; none when it describes
// all of it. The rules:
//   - a request on a route of the document must be answered with a status that
//     operation lists, a body and headers that status describes;
//   - a request the document calls invalid (a body or parameter that breaks its
//     schema) must be refused, with an error status the operation lists (a 4xx, or
//     a 5xx such as 507 from a check that runs before the body is read). A 2xx or
//     3xx to it is drift: the server takes something the document says it does not;
//   - a request on no route of the document (a path or method no route serves)
//     must be answered as every such request is: 401 (under /api, before any
//     route is known), 404, 405 with Allow, or 501, each with the Error body; or,
//     for OPTIONS, 204 with Allow.
func (s *Spec) Check(x Exchange) []string {
	req := withBody(x.Request, x.RequestBody)
	resp := *x.Response
	resp.Body = io.NopCloser(bytes.NewReader(x.ResponseBody))
	resp.Request = req

	_, reqErrs := s.validator.ValidateHttpRequestSync(req)
	if slices.ContainsFunc(reqErrs, unrouted) {
		return s.checkUnrouted(req, &resp, x.ResponseBody)
	}
	var problems []string
	if len(reqErrs) > 0 && resp.StatusCode < 400 {
		problems = append(problems, fmt.Sprintf("the document calls the request invalid, yet it was answered %d: %s",
			resp.StatusCode, strings.Join(describe(reqErrs), "; ")))
	}
	resp.Body = io.NopCloser(bytes.NewReader(x.ResponseBody))
	if ok, respErrs := s.validator.ValidateHttpResponse(withBody(req, x.RequestBody), &resp); !ok {
		problems = append(problems, describe(respErrs)...)
	}
	return problems
}

// unrouted reports whether e says the request is on no route of the document.
func unrouted(e *liberrors.ValidationError) bool {
	return e.IsPathMissingError() || e.IsOperationMissingError()
}

// checkUnrouted holds an answer to a request on no route of the document to the
// answers every such request gets (see Check).
func (s *Spec) checkUnrouted(req *http.Request, resp *http.Response, body []byte) []string {
	where := "no route of the document serves " + req.Method + " " + req.URL.Path
	switch {
	case req.Method == http.MethodOptions && resp.StatusCode == http.StatusNoContent:
		if resp.Header.Get("Allow") == "" {
			return []string{where + ": OPTIONS answered 204 without Allow"}
		}
		return nil
	case resp.StatusCode == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "":
		return []string{where + ": 405 without Allow"}
	case resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(req.URL.Path, "/api/"),
		resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusMethodNotAllowed,
		resp.StatusCode == http.StatusNotImplemented:
	default:
		return []string{fmt.Sprintf("%s, yet it was answered %d (an undocumented route, or the document lacks it)", where, resp.StatusCode)}
	}
	if req.Method == http.MethodHead {
		return nil // no body to hold to anything
	}
	if ok, errs := s.schemas.ValidateSchemaBytes(s.errorSchema, body); !ok {
		return []string{fmt.Sprintf("%s: its %d answer is not the Error body: %s", where, resp.StatusCode, strings.Join(describe(errs), "; "))}
	}
	return nil
}

// withBody returns a shallow copy of r whose body reads body from the start.
func withBody(r *http.Request, body []byte) *http.Request {
	c := r.Clone(r.Context())
	c.Body = io.NopCloser(bytes.NewReader(body))
	c.ContentLength = int64(len(body))
	return c
}

// describe turns the validator's errors into one line each: its message, and the
// reasons of each schema failure with where in the body it is.
func describe(errs []*liberrors.ValidationError) []string {
	var out []string
	for _, e := range errs {
		line := e.Message
		if e.Reason != "" && e.Reason != e.Message {
			line += ": " + e.Reason
		}
		for _, f := range e.SchemaValidationErrors {
			line += fmt.Sprintf(" [%s at %s]", f.Reason, f.FieldPath)
		}
		out = append(out, line)
	}
	return out
}

func joinErrors(errs []error) error {
	var parts []string
	for _, e := range errs {
		parts = append(parts, e.Error())
	}
	return fmt.Errorf("%s", strings.Join(parts, "; "))
}
