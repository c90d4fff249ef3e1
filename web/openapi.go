package web

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"
)

// OpenAPIYAML is the OpenAPI 3.1 document of Mailroom's HTTP API, as kept in the
// repository (web/openapi.yaml): every route, request and answer. The tests check
// every request they make, and its answer, against it (app/internal/apispec), so it
// describes the code as it is.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte

// OpenAPIPath is where the app serves the document as JSON, with no API key.
const OpenAPIPath = "/api/openapi.json"

var openAPIJSON = sync.OnceValues(func() ([]byte, error) { return YAMLToJSON(OpenAPIYAML) })

// OpenAPIJSON is OpenAPIYAML converted to JSON once, its keys in the document's
// order: the body of GET /api/openapi.json.
func OpenAPIJSON() ([]byte, error) { return openAPIJSON() }

// registerOpenAPI serves the document at OpenAPIPath. It is added on e itself, not
// on the /api group, so the API-key check does not run: the document describes the
// API to clients that have no key yet. Echo prefers this static path to the group's
// catch-all, so every other /api path still needs a key.
func registerOpenAPI(e *echo.Echo) {
	e.GET(OpenAPIPath, func(c echo.Context) error {
		doc, err := OpenAPIJSON()
		if err != nil {
			return fmt.Errorf("openapi document: %w", err)
		}
		c.Response().Header().Set("Cache-Control", "no-cache")
		return c.JSONBlob(http.StatusOK, doc)
	})
}

// YAMLToJSON converts a YAML document to JSON, keeping the order of mapping keys
// (encoding/json would sort a map's). Mapping keys must be strings, as in JSON.
func YAMLToJSON(doc []byte) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, &root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeJSON writes n as JSON to buf.
func writeJSON(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return fmt.Errorf("line %d: a YAML document holding %d nodes", n.Line, len(n.Content))
		}
		return writeJSON(buf, n.Content[0])
	case yaml.AliasNode:
		return writeJSON(buf, n.Alias)
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
				return fmt.Errorf("line %d: a mapping key that is not a string", k.Line)
			}
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeScalar(buf, k.Value); err != nil {
				return fmt.Errorf("line %d: %w", k.Line, err)
			}
			buf.WriteByte(':')
			if err := writeJSON(buf, v); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, item); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		if err := writeScalar(buf, v); err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		return nil
	}
	return fmt.Errorf("line %d: YAML node kind %d has no JSON form", n.Line, n.Kind)
}

// writeScalar writes v as JSON without escaping <, > and & (the document is no
// HTML, and "Name <address>" reads better as it is).
func writeScalar(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // Encode ends with a newline
	return nil
}
