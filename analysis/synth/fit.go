package synth

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Method is the estimator of the counterfactual.
type Method string

const (
	// SCM is the synthetic control of Abadie, Diamond & Hainmueller (2010):
	// donor weights on the simplex (see SimplexLS).
	SCM Method = "scm"
	// Augmented is the ridge-augmented synthetic control of Ben-Michael,
	// Feller & Rothstein (2021): SCM weights corrected by a ridge regression
	// of the treated unit's pre-period outcomes on the donors' (see fitter).
	Augmented Method = "augmented"
)

// ridge lambda grid, as augsynth's create_lambda_list: λ_max·s^k for
// k = 0…nLambda with s = lambdaMinRatio^(1/nLambda).
const (
	nLambda        = 20
	lambdaMinRatio = 1e-8
)

// fitter fits one treated series against a donor matrix. Donors[j] and
// Treated are series over every period; Pred and PredTreated, when set, are
// the predictors the SCM weights match (with V), instead of the outcomes of
// the fitted periods.
type fitter struct {
	Treated     []float64
	Donors      [][]float64
	Method      Method
	Intercept   bool
	Lambda      float64 // fixed ridge penalty (Augmented); 0: cross-validated
	Pred        [][]float64
	PredTreated []float64
	V           []float64

	// pilot[t] is the donors' mean in period t and dc the donors less it:
	// every quantity of the fit is unchanged by a shift common to all units
	// in a period, and the cross products of the centred series keep their
	// digits. cache[k] holds Σ_{t<k} dcₜdcₜᵀ (J×J).
	pilot []float64
	dc    [][]float64
	cache map[int][]float64
}

// fitResult is one fit: the weights, the SCM part, the ridge penalty and the
// synthetic series over every period.
type fitResult struct {
	W, SCMW   []float64
	Lambda    float64
	Synthetic []float64
	// CV holds the cross-validation curve when λ was chosen by it.
	CV []LambdaError
}

// LambdaError is one point of the λ cross-validation curve: the mean squared
// error of the left-out pre-period and its standard error over the folds.
type LambdaError struct {
	Lambda float64 `json:"lambda"`
	MSE    float64 `json:"mse"`
	SE     float64 `json:"se"`
}

// fit estimates the weights on the periods rows (indexes into the series),
// with y in place of f.Treated when y is not nil.
func (f *fitter) fit(rows []int, y []float64) (*fitResult, error) {
	if y == nil {
		y = f.Treated
	}
	if f.Pred == nil && (f.Method == SCM || f.Lambda != 0) {
		return f.fitMoments(rows, y)
	}
	J, R := len(f.Donors), len(rows)
	T := len(y)
	// Level shift: each unit's mean over the fitted periods (a unit fixed
	// effect), removed before weighting and added back to the synthetic.
	my, md := 0.0, make([]float64, J)
	if f.Intercept {
		for _, t := range rows {
			my += y[t]
		}
		my /= float64(R)
		for j, d := range f.Donors {
			for _, t := range rows {
				md[j] += d[t]
			}
			md[j] /= float64(R)
		}
	}
	a := make([]float64, R*J)
	b := make([]float64, R)
	for r, t := range rows {
		b[r] = y[t] - my
		for j, d := range f.Donors {
			a[r*J+j] = d[t] - md[j]
		}
	}
	var scm []float64
	var err error
	if f.Pred != nil {
		K := len(f.PredTreated)
		pa, pb := make([]float64, K*J), make([]float64, K)
		for k := range K {
			s := math.Sqrt(f.V[k])
			pb[k] = s * f.PredTreated[k]
			for j := range J {
				pa[k*J+j] = s * f.Pred[j][k]
			}
		}
		scm, _, err = SimplexLS(pa, pb)
	} else {
		scm, _, err = SimplexLS(a, b)
	}
	if err != nil {
		return nil, err
	}
	res := &fitResult{W: scm, SCMW: scm}
	if f.Method == Augmented {
		if err := f.augment(res, a, b, R, J); err != nil {
			return nil, err
		}
	}
	res.Synthetic = make([]float64, T)
	for t := range T {
		s := my
		for j, d := range f.Donors {
			s += res.W[j] * (d[t] - md[j])
		}
		res.Synthetic[t] = s
	}
	return res, nil
}

// fitMoments is fit from the cross products of the fitted periods alone,
// O(J²) per fit once the pre-period's are cached, for the many refits of the
// inference: with S = Σ aₜaₜᵀ, c = Σ aₜbₜ and β = Σ bₜ² (less their means
// with an intercept), the SCM Gram matrix is G = S − c1ᵀ − 1cᵀ + β11ᵀ, and
// the ridge correction solves (PSP + λI)δ = P(c − S·w), P = I − 11ᵀ/J the
// centring across donors, by Cholesky.
func (f *fitter) fitMoments(rows []int, y []float64) (*fitResult, error) {
	J, R, T := len(f.Donors), len(rows), len(y)
	if f.dc == nil {
		f.pilot = make([]float64, T)
		for _, d := range f.Donors {
			for t, v := range d {
				f.pilot[t] += v / float64(J)
			}
		}
		f.dc = make([][]float64, J)
		for j, d := range f.Donors {
			f.dc[j] = make([]float64, T)
			for t, v := range d {
				f.dc[j][t] = v - f.pilot[t]
			}
		}
		f.cache = map[int][]float64{}
	}
	k := 0
	for k < R && rows[k] == k {
		k++
	}
	col := make([]float64, J)
	S, ok := f.cache[k]
	if !ok {
		S = make([]float64, J*J)
		for t := range k {
			for j := range J {
				col[j] = f.dc[j][t]
			}
			addOuter(S, col, 1)
		}
		f.cache[k] = S
	}
	S = append([]float64(nil), S...)
	for _, t := range rows[k:] {
		for j := range J {
			col[j] = f.dc[j][t]
		}
		addOuter(S, col, 1)
	}
	sa, c := make([]float64, J), make([]float64, J)
	sb, beta := 0.0, 0.0
	for _, t := range rows {
		bt := y[t] - f.pilot[t]
		sb += bt
		beta += bt * bt
		for j := range J {
			sa[j] += f.dc[j][t]
			c[j] += f.dc[j][t] * bt
		}
	}
	md, my := make([]float64, J), 0.0
	if f.Intercept {
		fr := float64(R)
		my = sb / fr
		for j := range J {
			md[j] = sa[j] / fr
		}
		for i := range J {
			for j := range J {
				S[i*J+j] -= fr * md[i] * md[j]
			}
			c[i] -= fr * md[i] * my
		}
		beta -= fr * my * my
	}
	g := make([]float64, J*J)
	for i := range J {
		for j := range J {
			g[i*J+j] = S[i*J+j] - c[i] - c[j] + beta
		}
	}
	w, _, err := simplexGram(g, J)
	if err != nil {
		return nil, err
	}
	res := &fitResult{W: w, SCMW: w, Lambda: f.Lambda}
	if f.Method == Augmented {
		v := make([]float64, J)
		for i := range J {
			v[i] = c[i]
			for j := range J {
				v[i] -= S[i*J+j] * w[j]
			}
		}
		center(v)
		rowMean := make([]float64, J)
		grand := 0.0
		for i := range J {
			for j := range J {
				rowMean[i] += S[i*J+j] / float64(J)
			}
			grand += rowMean[i] / float64(J)
		}
		k := mat.NewSymDense(J, nil)
		for i := range J {
			for j := i; j < J; j++ {
				x := S[i*J+j] - rowMean[i] - rowMean[j] + grand
				if i == j {
					x += f.Lambda
				}
				k.SetSym(i, j, x)
			}
		}
		var ch mat.Cholesky
		if !ch.Factorize(k) {
			return nil, fmt.Errorf("%w: ÃᵀÃ + λI is not positive definite (λ = %g)", ErrSolver, f.Lambda)
		}
		var delta mat.VecDense
		if err := ch.SolveVecTo(&delta, mat.NewVecDense(J, v)); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSolver, err)
		}
		res.W = make([]float64, J)
		for j := range J {
			res.W[j] = w[j] + delta.AtVec(j)
		}
	}
	res.Synthetic = make([]float64, T)
	for t := range T {
		s := my + f.pilot[t]
		for j := range J {
			s += res.W[j] * (f.dc[j][t] - md[j])
		}
		res.Synthetic[t] = s
	}
	return res, nil
}

func center(v []float64) {
	m := 0.0
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	for i := range v {
		v[i] -= m
	}
}

// augment adds the ridge correction of Ben-Michael, Feller & Rothstein (2021,
// eq. 11) to the SCM weights, as augsynth computes it:
//
//	w_aug = w_scm + Ãᵀ(ÃÃᵀ + λI)⁻¹(b − A·w_scm) = w_scm + (ÃᵀÃ + λI)⁻¹Ãᵀ(b − A·w_scm),
//
// Ã being the donors' fitted-period outcomes centred across donors in each
// period (so the correction sums to zero and Σw_aug = 1; the weights may be
// negative: the ridge extrapolates beyond the donors' hull). When f.Lambda is
// zero λ is chosen by leave-one-period-out cross-validation (crossValidate).
func (f *fitter) augment(res *fitResult, a, b []float64, R, J int) error {
	ac := make([]float64, len(a))
	for r := range R {
		m := 0.0
		for j := range J {
			m += a[r*J+j]
		}
		m /= float64(J)
		for j := range J {
			ac[r*J+j] = a[r*J+j] - m
		}
	}
	k := mat.NewSymDense(J, nil)
	for r := range R {
		row := ac[r*J : (r+1)*J]
		k.SymRankOne(k, 1, mat.NewVecDense(J, row))
	}
	r := make([]float64, R)
	for i := range R {
		r[i] = b[i]
		for j := range J {
			r[i] -= a[i*J+j] * res.SCMW[j]
		}
	}
	u := mat.NewVecDense(J, nil)
	for i := range R {
		u.AddScaledVec(u, r[i], mat.NewVecDense(J, ac[i*J:(i+1)*J]))
	}
	lambda := f.Lambda
	var delta mat.VecDense
	if lambda == 0 {
		// δ = Q(Λ + λ)⁻¹Qᵀ Ãᵀ r, the eigendecomposition shared with the
		// cross-validation.
		var eig mat.EigenSym
		if !eig.Factorize(k, true) {
			return fmt.Errorf("%w: eigendecomposition of the donors' Gram matrix failed", ErrSolver)
		}
		vals := eig.Values(nil)
		var q mat.Dense
		eig.VectorsTo(&q)
		for i := range vals {
			vals[i] = math.Max(vals[i], 0)
		}
		var err error
		lambda, res.CV, err = crossValidate(a, b, ac, R, J, vals, &q)
		if err != nil {
			return err
		}
		var s mat.VecDense
		s.MulVec(q.T(), u)
		for i := range J {
			s.SetVec(i, s.AtVec(i)/(vals[i]+lambda))
		}
		delta.MulVec(&q, &s)
	} else {
		// A fixed λ (the refits of the inference): Cholesky of ÃᵀÃ + λI.
		for i := range J {
			k.SetSym(i, i, k.At(i, i)+lambda)
		}
		var ch mat.Cholesky
		if !ch.Factorize(k) {
			return fmt.Errorf("%w: ÃᵀÃ + λI is not positive definite (λ = %g)", ErrSolver, lambda)
		}
		if err := ch.SolveVecTo(&delta, u); err != nil {
			return fmt.Errorf("%w: %v", ErrSolver, err)
		}
	}
	res.Lambda = lambda
	res.W = make([]float64, J)
	for j := range J {
		res.W[j] = res.SCMW[j] + delta.AtVec(j)
	}
	return nil
}

// crossValidate chooses the ridge penalty as augsynth does (get_lambda_errors,
// choose_lambda with min_1se): for each fitted period i but the last, refit
// the SCM weights without it and predict it with the augmented weights for
// every λ of the grid; the mean squared prediction error over the folds and
// its standard error (sd/√folds) give the curve, and the chosen λ is the
// largest whose error is within one standard error of the minimum (the
// one-standard-error rule of Ben-Michael, Feller & Rothstein 2021, §4.3).
//
// Each fold is cheap: the SCM Gram matrix loses one rank-one term, and the
// ridge prediction of the left-out period i (with ãᵢ its centred row and
// M = ÃᵀÃ + λI, computed once through its eigendecomposition) is, by
// Sherman–Morrison, ãᵢᵀ(M − ãᵢãᵢᵀ)⁻¹u = ãᵢᵀM⁻¹u / (1 − ãᵢᵀM⁻¹ãᵢ),
// u = Ã₋ᵢᵀ r₋ᵢ.
func crossValidate(a, b, ac []float64, R, J int, vals []float64, q *mat.Dense) (float64, []LambdaError, error) {
	if R < 3 {
		return 0, nil, fmt.Errorf("%w: cross-validating the ridge penalty needs at least 3 fitted periods, got %d", ErrInsufficient, R)
	}
	lmax := 0.0
	for _, v := range vals {
		lmax = math.Max(lmax, v)
	}
	if lmax == 0 {
		lmax = 1
	}
	lambdas := make([]float64, nLambda+1)
	scaler := math.Pow(lambdaMinRatio, 1.0/nLambda)
	for k := range lambdas {
		lambdas[k] = lmax * math.Pow(scaler, float64(k))
	}
	g := gramD(a, b, J)
	folds := R - 1
	errs := make([][]float64, len(lambdas))
	d := make([]float64, J)
	gi := make([]float64, len(g))
	r := make([]float64, R)
	u := mat.NewVecDense(J, nil)
	var p, s mat.VecDense
	for i := range folds {
		copy(gi, g)
		for j := range J {
			d[j] = a[i*J+j] - b[i]
		}
		addOuter(gi, d, -1)
		w, _, err := simplexGram(gi, J)
		if err != nil {
			return 0, nil, err
		}
		u.Zero()
		for t := range R {
			r[t] = b[t]
			for j := range J {
				r[t] -= a[t*J+j] * w[j]
			}
			if t != i {
				u.AddScaledVec(u, r[t], mat.NewVecDense(J, ac[t*J:(t+1)*J]))
			}
		}
		p.MulVec(q.T(), mat.NewVecDense(J, ac[i*J:(i+1)*J]))
		s.MulVec(q.T(), u)
		for k, l := range lambdas {
			num, den := 0.0, 0.0
			for m := range J {
				num += p.AtVec(m) * s.AtVec(m) / (vals[m] + l)
				den += p.AtVec(m) * p.AtVec(m) / (vals[m] + l)
			}
			e := r[i] - num/(1-den)
			errs[k] = append(errs[k], e*e)
		}
	}
	curve := make([]LambdaError, len(lambdas))
	best := 0
	for k, l := range lambdas {
		m, v := meanVar(errs[k])
		curve[k] = LambdaError{Lambda: l, MSE: m, SE: math.Sqrt(v / float64(folds))}
		if m < curve[best].MSE {
			best = k
		}
	}
	limit := curve[best].MSE + curve[best].SE
	chosen := 0.0
	for _, c := range curve {
		if c.MSE <= limit && c.Lambda > chosen {
			chosen = c.Lambda
		}
	}
	return chosen, curve, nil
}

// meanVar returns the mean and the sample variance (n − 1) of x.
func meanVar(x []float64) (float64, float64) {
	m := 0.0
	for _, v := range x {
		m += v
	}
	m /= float64(len(x))
	if len(x) < 2 {
		return m, 0
	}
	s := 0.0
	for _, v := range x {
		s += (v - m) * (v - m)
	}
	return m, s / float64(len(x)-1)
}
