// Command analyzegen writes the deterministic CSV used by bench/analyze.sh: one
// row per unit with columns unit, variant (control or treatment, 50/50), y (the
// metric) and x (a pre-period covariate correlated with y, ρ ≈ 0.77).
//
//	go run ./bench/analyzegen -rows 10000000 -out units.csv
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
)

func main() {
	rows := flag.Int("rows", 10_000_000, "number of rows")
	out := flag.String("out", "units.csv", "output file")
	flag.Parse()
	if err := write(*out, *rows); err != nil {
		fmt.Fprintln(os.Stderr, "analyzegen:", err)
		os.Exit(1)
	}
}

func write(path string, rows int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	w.WriteString("unit,variant,y,x\n")
	var buf []byte
	for i := range rows {
		x := 10 + 3*r.NormFloat64()
		v := "control"
		lift := 0.0
		if r.IntN(2) == 1 {
			v, lift = "treatment", 0.05
		}
		y := 0.8*x + 2*r.NormFloat64() + lift
		buf = strconv.AppendInt(buf[:0], int64(i), 10)
		buf = append(buf, ',')
		buf = append(buf, v...)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, y, 'f', 4, 64)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, x, 'f', 4, 64)
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
