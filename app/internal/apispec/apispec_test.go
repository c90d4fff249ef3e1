package apispec_test

import (
	"testing"

	"github.com/mailroom/mailroom/app/internal/apispec"
)

func TestTheDocumentIsValidOpenAPI31(t *testing.T) {
	spec, err := apispec.Mailroom()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range spec.Validate() {
		t.Error(p)
	}
	if len(spec.Operations()) < 20 {
		t.Errorf("operations: %v", spec.Operations())
	}
}
