# Reference values for package abtest, from R's stats package.
# Run: Rscript testdata/reference.R   (R 4.2.2 was used)
options(digits = 17)
cat("## two-proportion z test, prop.test(c(xB, xA), c(nB, nA), correct = FALSE): sqrt(X-squared) with sign, p-value, conf.int of pB - pA\n")
for (c in list(c(100, 1000, 120, 1000), c(45, 500, 70, 520), c(3, 40, 0, 35), c(480, 5000, 530, 5100))) {
  r <- prop.test(c(c[3], c[1]), c(c[4], c[2]), correct = FALSE)
  z <- sign(c[3] / c[4] - c[1] / c[2]) * sqrt(unname(r$statistic))
  cat(sprintf("{%g, %g, %g, %g, %.17g, %.17g, %.17g, %.17g},\n", c[1], c[2], c[3], c[4], z, r$p.value, r$conf.int[1], r$conf.int[2]))
}
cat("## Wilson, prop.test(x, n, correct = FALSE, conf.level = 1 - alpha)$conf.int\n")
for (c in list(c(100, 1000, 0.05), c(81, 263, 0.05), c(15, 148, 0.05), c(0, 20, 0.05), c(1, 29, 0.05), c(29, 29, 0.05), c(100, 1000, 0.1), c(5, 7, 0.01))) {
  r <- prop.test(c[1], c[2], correct = FALSE, conf.level = 1 - c[3])
  cat(sprintf("{%g, %g, %g, %.17g, %.17g},\n", c[1], c[2], c[3], r$conf.int[1], r$conf.int[2]))
}
cat("## Welch, t.test(b, a) with var.equal = FALSE: t, df, p, conf.int of mean(b) - mean(a)\n")
a <- c(0, 0, 12.5, 0, 30, 0, 0, 8.25, 0, 0, 55, 0)
b <- c(0, 19.99, 0, 0, 42, 0, 7.5, 0, 0, 64.1, 0, 0, 25, 0, 0)
r <- t.test(b, a)
cat(sprintf("t=%.17g df=%.17g p=%.17g lo=%.17g hi=%.17g\n", r$statistic, r$parameter, r$p.value, r$conf.int[1], r$conf.int[2]))
r <- t.test(b, a, conf.level = 0.9)
cat(sprintf("90%%: lo=%.17g hi=%.17g\n", r$conf.int[1], r$conf.int[2]))
cat("## qnorm / qt\n")
cat(sprintf("%.17g %.17g %.17g %.17g\n", qnorm(0.975), qnorm(0.995), qt(0.975, 10), qt(0.975, 57.3)))
cat("## SRM, chisq.test(x, p = w / sum(w)): X-squared, df, p-value\n")
for (c in list(list(c(5100, 4900), c(1, 1)), list(c(10300, 9700), c(1, 1)), list(c(5050, 2400, 2550), c(0.5, 0.25, 0.25)), list(c(1000, 1100, 900), c(1, 1, 1)))) {
  r <- chisq.test(c[[1]], p = c[[2]] / sum(c[[2]]))
  cat(sprintf("%s %.17g %g %.17g\n", paste(c[[1]], collapse = ","), r$statistic, r$parameter, r$p.value))
}
cat("## Holm, p.adjust(p, 'holm')\n")
cat(sprintf("%.17g", p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm")), "\n")
cat(sprintf("%.17g", p.adjust(c(0.2, 0.01, 0.6), "holm")), "\n")
