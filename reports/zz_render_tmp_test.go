package reports

import (
	"os"
	"testing"
)

func TestZZRenderTmp(t *testing.T) {
	dir := os.Getenv("ZZ_OUT")
	if dir == "" {
		t.Skip()
	}
	for _, c := range sampleCharts(Privacy{Private: true, Epsilon: 0.5}) {
		for _, f := range Formats() {
			b, err := Bytes(c, f, RenderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(dir+"/"+c.Name()+"."+string(f), b, 0o644)
		}
	}
}
