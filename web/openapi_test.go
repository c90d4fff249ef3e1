package web_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mailroom/mailroom/web"
)

func TestYAMLToJSONKeepsKeyOrderAndScalarTypes(t *testing.T) {
	got, err := web.YAMLToJSON([]byte(`
zeta: 1
alpha:
  - "two"
  - 3.5
  - true
  - null
  - Name <a@example.com>
mid: {b: "007", a: 007}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"zeta":1,"alpha":["two",3.5,true,null,"Name <a@example.com>"],"mid":{"b":"007","a":7}}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !json.Valid(got) {
		t.Error("not valid JSON")
	}
}

func TestYAMLToJSONRefusesWhatJSONCannotHold(t *testing.T) {
	for _, doc := range []string{"1: a\n", "a: [\n", "? [a]\n: b\n"} {
		if out, err := web.YAMLToJSON([]byte(doc)); err == nil {
			t.Errorf("%q: converted to %s, want an error", doc, out)
		}
	}
}

func TestTheEmbeddedOpenAPIDocumentConvertsToJSON(t *testing.T) {
	doc, err := web.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(doc), `{"openapi":"3.1.0",`) {
		t.Errorf("the document does not start with its version: %.40s", doc)
	}
}
