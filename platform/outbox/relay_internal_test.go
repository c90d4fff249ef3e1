package outbox

import (
	"slices"
	"testing"
)

// A ranged DELETE must never take a row between two published ones: each run holds
// consecutive ids only.
func TestConsecutiveRunsCoverExactlyTheIDs(t *testing.T) {
	cases := []struct {
		ids  []int64
		want [][2]int64
	}{
		{nil, nil},
		{[]int64{7}, [][2]int64{{7, 7}}},
		{[]int64{1, 2, 3, 4}, [][2]int64{{1, 4}}},
		{[]int64{1, 2, 4, 5, 9}, [][2]int64{{1, 2}, {4, 5}, {9, 9}}},
		{[]int64{3, 5, 7}, [][2]int64{{3, 3}, {5, 5}, {7, 7}}},
	}
	for _, c := range cases {
		if got := consecutiveRuns(c.ids); !slices.Equal(got, c.want) {
			t.Errorf("consecutiveRuns(%v) = %v, want %v", c.ids, got, c.want)
		}
	}
}
