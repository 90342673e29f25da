#!/usr/bin/env python3
"""Derive and check the Winograd F(m, r) transform matrices of clkernels/wino.cl.

F(2, 5), F(4, 3) and F(3, 5) come from the Toom-Cook construction: At from the
points' powers, G from the Lagrange weights, and Bt solved exactly (sympy)
from the identity y = At [(G g) * (Bt d)], which must equal the correlation
y_i = sum_k g_k d_(i+k) for every g and d. F(2, 5) is on the points 0, 1,
-1, 2, -2 and infinity. F(4, 3) is on 0, -1, 1, 1/2, -2 and infinity, the
points Barabasz et al. (2020) found most accurate for it: on random inputs
its float32 error came to at most 0.79 of the device suite's bound for a
sum in any order, against 1.29 on 0, +-1, +-2 and 1.53 on 0, +-1, +-1/2
(device/opencl, tiled family). F(3, 5) is on 0, -1, 1, 1/2, -2, -1/2 and
infinity: at most 0.39 of the bound, against F(2, 5)'s 0.29. F(2, 3) is
Lavin's (points 0, 1, -1), checked the same way.

Run: python3 ci/wino_matrices.py   (needs sympy: apt-get install python3-sympy)
"""
import itertools

import sympy as sp


def toom_cook(m, r, points):
    n = m + r - 1
    assert len(points) == n - 1
    at = sp.zeros(m, n)
    for i, j in itertools.product(range(m), range(n - 1)):
        at[i, j] = sp.Rational(points[j]) ** i
    at[m - 1, n - 1] = 1
    g = sp.zeros(n, r)
    for j in range(n - 1):
        f = sp.prod([sp.Rational(points[j]) - points[l] for l in range(n - 1) if l != j])
        for k in range(r):
            g[j, k] = sp.Rational(points[j]) ** k / f
    g[n - 1, r - 1] = 1
    b = sp.Matrix(n, n, lambda a, c: sp.Symbol(f"b{a}_{c}"))
    eqs = [sp.Eq(sum(at[i, j] * g[j, k] * b[j, l] for j in range(n)), 1 if l == i + k else 0)
           for i in range(m) for k in range(r) for l in range(n)]
    sol = sp.solve(eqs, list(b), dict=True)
    assert sol, "no Bt satisfies the identity"
    bt = b.subs(sol[0])
    return at, g, bt.subs({s: 0 for s in bt.free_symbols})


def check(at, g, bt, m, r):
    """The identity on every unit g and d: exact, so it holds for all."""
    n = m + r - 1
    for k, l in itertools.product(range(r), range(n)):
        gk = sp.Matrix([1 if q == k else 0 for q in range(r)])
        dl = sp.Matrix([1 if q == l else 0 for q in range(n)])
        y = at * (g * gk).multiply_elementwise(bt * dl)
        want = sp.Matrix([1 if l == i + k else 0 for i in range(m)])
        assert y == want, (k, l, y, want)


lavin = (sp.Matrix([[1, 1, 1, 0], [0, 1, -1, -1]]),
         sp.Matrix([[1, 0, 0], [sp.Rational(1, 2)] * 3, [sp.Rational(1, 2), -sp.Rational(1, 2), sp.Rational(1, 2)], [0, 0, 1]]),
         sp.Matrix([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]))
check(*lavin, 2, 3)
print("F(2,3) (Lavin): checked")
f25 = toom_cook(2, 5, [0, 1, -1, 2, -2])
check(*f25, 2, 5)
for name, mat in zip(("At", "G", "Bt"), f25):
    print(f"F(2,5) {name} =", mat.tolist())
print("F(2,5): checked")
f43 = toom_cook(4, 3, [0, -1, 1, sp.Rational(1, 2), -2])
check(*f43, 4, 3)
for name, mat in zip(("At", "G", "Bt"), f43):
    print(f"F(4,3) {name} =", mat.tolist())
print("F(4,3): checked")
f35 = toom_cook(3, 5, [0, -1, 1, sp.Rational(1, 2), -2, -sp.Rational(1, 2)])
check(*f35, 3, 5)
for name, mat in zip(("At", "G", "Bt"), f35):
    print(f"F(3,5) {name} =", mat.tolist())
print("F(3,5): checked")
