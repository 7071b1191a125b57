/// The barrier a time loop's team crosses between the kernels of a step: the kernels'
/// `rnnc_barrier` (a counter and a flag of the team's, a sense of each thread's), not
/// `#pragma omp barrier`, whose crossing costs 190 to 230 ns on the 2-core machine against
/// 45 to 80 (see `rnnc_barrier` in rnnc_kernels.h for the measurements).
enum StepBarrier {
    /// Before the loop's `#pragma omp parallel`: shared by the team.
    static let declaration = "    rnnc_team_barrier step_barrier = {0, 0};  /* the team's barrier between a step's kernels */\n"
    /// First thing inside the region: each thread's side of it.
    static let threadState = "        int sense = 0;  /* this thread's side of step_barrier */\n"
    /// One crossing (a statement).
    static let call = "rnnc_barrier(&step_barrier, nth, &sense);"
}
