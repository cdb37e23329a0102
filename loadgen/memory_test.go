package loadgen

import (
	"math"
	"testing"
)

// TestQuarterMeans: the quarters the hub-memory growth is judged on; the
// second and last are compared, so the first (caches filling after the
// load) never counts, and a remainder falls in the middle.
func TestQuarterMeans(t *testing.T) {
	// 9 samples: quarters of 2 from each end, the 5th sample in none.
	q1, q2, q3, q4 := quarterMeans([]float64{1000, 1000, 100, 102, 77777, 103, 103, 104, 106})
	if q1 != 1000 || q2 != 101 || q3 != 103 || q4 != 105 {
		t.Fatalf("quarters %v %v %v %v", q1, q2, q3, q4)
	}
	q1, q2, q3, q4 = quarterMeans([]float64{1, 2, 3, 4})
	if q1 != 1 || q2 != 2 || q3 != 3 || q4 != 4 {
		t.Fatalf("quarters of 4: %v %v %v %v", q1, q2, q3, q4)
	}
	if _, q2, _, q4 := quarterMeans([]float64{1, 2, 3}); !math.IsNaN(q2) || !math.IsNaN(q4) {
		t.Fatalf("3 samples: %v %v", q2, q4)
	}
}
