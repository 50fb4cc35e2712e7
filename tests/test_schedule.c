// test_schedule.c: the learning-rate schedule of `train fit` (run.c's schedule_lr) at
// hand-computed points: linear warmup, its 10% cap, the peak, cosine decay to LR/10.
#include <math.h>
#include "../run.h"
#include "check.h"

// lr (float) against the hand value: float rounding only.
static void expect(float got, double want, const char *name) {
    CHECK(fabs(got - want) <= 1e-6 * want, name, "lr %.9g, want %.9g", got, want);
}

int main(void) {
    // peak 1e-3, 10 warmup steps, budget in steps: p = (step - 1) / steps
    Schedule s = {.lr = 1e-3f, .warmup = 10, .warm_end = -1};
    expect(schedule_lr(&s, 1, 0.00), 1e-4, "warmup: step 1 of 10 gives lr/10");
    expect(schedule_lr(&s, 5, 0.04), 5e-4, "warmup: step 5 of 10 gives lr/2");
    expect(schedule_lr(&s, 10, 0.09), 1e-3, "warmup ends at the peak at step 10");
    CHECK(s.warm_end == 0.09, "warmup's end is remembered", "warm_end %g", s.warm_end);
    // cosine over the rest, t = (p - 0.09) / 0.91: lr (0.1 + 0.9 (1 + cos(pi t)) / 2)
    expect(schedule_lr(&s, 50, 0.09 + 0.91 / 2), 1e-3 * (0.1 + 0.45), "cosine: halfway gives 0.55 lr");
    expect(schedule_lr(&s, 70, 0.09 + 0.91 / 3), 1e-3 * (0.1 + 0.9 * 0.75), "cosine: a third gives 0.775 lr");
    expect(schedule_lr(&s, 100, 1.0), 1e-4, "cosine: the end of the budget gives lr/10");

    // warmup longer than 10% of the budget ends at 10%: w = max(step / warmup, p / 0.1)
    Schedule c = {.lr = 2e-3f, .warmup = 1000, .warm_end = -1};
    expect(schedule_lr(&c, 3, 0.05), 1e-3, "warmup is capped at 10% of the budget: p 0.05 gives lr/2");
    expect(schedule_lr(&c, 7, 0.10), 2e-3, "capped warmup ends at p = 0.1");

    // no warmup: the peak at once, then the cosine from p = 0
    Schedule z = {.lr = 1e-3f, .warmup = 0, .warm_end = -1};
    expect(schedule_lr(&z, 1, 0.0), 1e-3, "no warmup: step 1 is at the peak");
    expect(schedule_lr(&z, 2, 0.5), 1e-3 * 0.55, "no warmup: halfway gives 0.55 lr");
    CHECK_EXIT();
}
