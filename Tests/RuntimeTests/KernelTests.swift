import CKernels
import XCTest

/// The hand-written kernels against plain double-precision loops, on shapes that exercise
/// every path: full and edge row tiles, full and narrow column panels, both product paths.
final class KernelTests: XCTestCase {
    func values(_ n: Int, seed: UInt32) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 1_664_525 &+ 1_013_904_223
            return Float(Int(s >> 9) % 2001 - 1000) / 1000
        }
    }

    func testPackedProductMatchesAPlainLoop() {
        for (m, n, k) in [(1, 1, 1), (7, 13, 5), (32, 1024, 64), (33, 49, 17), (200, 100, 70)] {
            let a = values(m * k, seed: 1), w = values(n * k, seed: 2), bias = values(n, seed: 3)
            var packed = [Float](repeating: 0, count: rnnc_packed_size(Int32(n), Int32(k)))
            rnnc_pack_weights(w, Int32(n), Int32(k), &packed)
            var c = [Float](repeating: 0, count: m * n)
            rnnc_gemm(Int32(m), Int32(n), Int32(k), a, Int32(k), packed, bias, &c, Int32(n), 2)
            var err: Double = 0
            for i in 0..<m {
                for j in 0..<n {
                    var acc = Double(bias[j])
                    for q in 0..<k { acc += Double(a[i * k + q]) * Double(w[j * k + q]) }
                    err = max(err, abs(acc - Double(c[i * n + j])))
                }
            }
            XCTAssertLessThan(err, 1e-4, "\(m)x\(n)x\(k)")
        }
    }

    /// A recurrent step's product is split between the threads of a team: by whole panels,
    /// or by (panel, row tile) pairs when whole panels leave threads idle. Every team size
    /// must give the bits of one thread, with and without bias and accumulation; the shapes
    /// take both splits (and, for 100 and 200 rows, the split by rows); 24 x 2048 x 256 has
    /// 2 MB of weights and enough rows for its tiles to prefetch the next panel; 64 rows of
    /// 9 whole panels split 5 and 4 on 2 threads, which the pairs balance (rnnc_splits_row_tiles).
    func testThreadSharesOfAProductGiveTheBitsOfOneThreadForAnyTeamSize() {
        var tileSplits = 0
        XCTAssertEqual(rnnc_prefetch_panels(24, 2048, 256, 1), 1)
        let nine = 9 * Int(RNNC_NR)
        for (m, n, k) in [(1, 100, 9), (9, 50, 7), (12, 256, 64), (17, 1024, 33), (64, 1056, 20), (100, 70, 5), (200, 48, 3),
                          (24, 2048, 256), (64, nine, 20)] {
            let a = values(m * k, seed: 7), w = values(n * k, seed: 8), bias = values(n, seed: 9)
            var packed = [Float](repeating: 0, count: rnnc_packed_size(Int32(n), Int32(k)))
            rnnc_pack_weights(w, Int32(n), Int32(k), &packed)
            let start = values(m * n, seed: 10)
            for accumulate in [Int32(0), 1] {
                let b: [Float]? = accumulate == 0 ? bias : nil
                func product(team: Int32) -> [Float] {
                    var c = start
                    for tid in 0..<team {
                        rnnc_gemm_part(Int32(m), Int32(n), Int32(k), a, Int32(k), packed, b, &c, Int32(n), accumulate, tid, team)
                    }
                    return c
                }
                let one = product(team: 1)
                for team in Int32(2)...17 {
                    let panels = (Int32(n) + RNNC_NR - 1) / RNNC_NR
                    let tiles = rnnc_row_tiles(Int32(m))
                    if rnnc_splits_panels(Int32(m)) != 0, rnnc_splits_row_tiles(panels, tiles, Int32(k), team) != 0 { tileSplits += 1 }
                    let differing = zip(product(team: team), one).filter { $0.bitPattern != $1.bitPattern }.count
                    XCTAssertEqual(differing, 0, "\(m)x\(n)x\(k), accumulate \(accumulate), \(team) threads")
                }
            }
        }
        XCTAssertGreaterThan(tileSplits, 20, "the shapes must take the split by (panel, row tile)")
    }

    /// When a step runs gate-aligned (rnnc_gates_aligned): blocks of whole panels (at batch 1
    /// also of whole vectors) balanced between the threads; from 4 rows, no more panels for
    /// the busiest thread than whole panels give it.
    func testGateAlignedStepsNeedBalancedThreadsFromFourRows() {
        let nr = Int(RNNC_NR), small = 1000
        XCTAssertEqual(rnnc_gates_aligned(32, Int32(4 * nr), 4, 2, small), 1, "2 and 2 panels a gate")
        XCTAssertEqual(rnnc_gates_aligned(32, Int32(5 * nr), 4, 2, small), 0, "3 and 2 a gate: 12 against 10 panels")
        XCTAssertEqual(rnnc_gates_aligned(32, Int32(5 * nr), 1, 2, small), 1, "one gate: 3 and 2 either way")
        XCTAssertEqual(rnnc_gates_aligned(2, Int32(5 * nr), 4, 2, small), 1, "below 4 rows the barrier saved weighs more")
        XCTAssertEqual(rnnc_gates_aligned(1, Int32(5 * nr), 4, 2, small), 1, "batch 1")
        XCTAssertEqual(rnnc_gates_aligned(32, Int32(3 * nr), 4, 2, small), 0, "2 and 1 a gate: 33% above the mean")
        XCTAssertEqual(rnnc_gates_aligned(32, Int32(4 * nr), 4, 1, small), 0, "one thread")
        XCTAssertEqual(rnnc_gates_aligned(32, Int32(4 * nr + 1), 4, 2, small), 0, "blocks not made of whole panels")
    }

    /// Which products split their (panel, row tile) pairs rather than whole panels: always
    /// at 25% above the mean; below it only for a gain of 1/16 of the busiest thread's tiles
    /// whose panels fit its L2; never with one row tile or one thread.
    func testTheSplitByRowTilesIsTakenWhereItBalancesTheThreads() {
        XCTAssertEqual(rnnc_splits_row_tiles(3, 2, 1 << 16, 2), 1, "2 panels against 1.5: 33% above the mean")
        XCTAssertEqual(rnnc_splits_row_tiles(9, 1, 20, 2), 0, "one row tile: nothing to share")
        XCTAssertEqual(rnnc_splits_row_tiles(9, 8, 20, 1), 0, "one thread")
        XCTAssertEqual(rnnc_splits_row_tiles(22, 4, 256, 2), 0, "even panels: balanced already")
        XCTAssertEqual(rnnc_splits_row_tiles(43, 8, 512, 2), 0, "22 panels against 21.5: too little to gain")
        XCTAssertEqual(rnnc_splits_row_tiles(86, 8, 1 << 14, 16), 0, "12% above the mean, but the panels exceed any L2")
        if rnnc_l2_bytes() > 0 {
            XCTAssertEqual(rnnc_splits_row_tiles(9, 8, 100, 2), 1, "5 panels against 4.5, small panels")
            XCTAssertEqual(rnnc_splits_row_tiles(11, 4, 128, 2), 1, "6 panels against 5.5, small panels")
        }
    }

    /// The row tiles of a product cover its rows in order, none larger than RNNC_MR; only
    /// the last can be a single row (where M = 1 or M % RNNC_MR = 1, as before the layout
    /// shared the tail), and every other tile has enough sums in flight for the FMA units.
    func testRowTilesCoverTheRowsAndKeepTheFmaUnitsBusy() {
        let mr = Int(RNNC_MR), nv = Int(RNNC_NV), chains = Int(RNNC_FMA_CHAINS)
        for m in 1...200 {
            let tiles = Int(rnnc_row_tiles(Int32(m)))
            XCTAssertEqual(tiles, (m + mr - 1) / mr, "M = \(m)")
            var next = 0
            for t in 0..<tiles {
                var r0: Int32 = 0, r1: Int32 = 0
                rnnc_row_tile(Int32(m), Int32(t), &r0, &r1)
                let rows = Int(r1 - r0)
                XCTAssertEqual(Int(r0), next, "M = \(m), tile \(t) starts where the last ended")
                XCTAssert(rows >= 1 && rows <= mr, "M = \(m), tile \(t): \(rows) rows")
                if rows == 1 {
                    XCTAssert(t == tiles - 1 && m % mr == 1 || m == 1, "M = \(m): a one-row tile only as the last row")
                } else if tiles > 1 {
                    XCTAssertGreaterThanOrEqual(rows * nv, chains, "M = \(m), tile \(t): \(rows) rows")
                }
                next = Int(r1)
            }
            XCTAssertEqual(next, m, "M = \(m): the tiles end at the last row")
        }
    }

    func testWeightGradientMatchesAPlainLoopOnBothPaths() {
        for (m, n, k) in [(10, 8, 6), (1000, 100, 64), (777, 130, 49)] {   // row path, then the product path
            let dy = values(m * n, seed: 4), x = values(m * k, seed: 5)
            var dw = values(n * k, seed: 6)
            let start = dw
            rnnc_weight_gradient(Int32(m), Int32(n), Int32(k), dy, Int32(n), x, Int32(k), &dw, 2)
            var err: Double = 0
            for i in 0..<n {
                for j in 0..<k {
                    // Float sums of m products differ from the exact one by a few ulp of
                    // the sum of the terms' magnitudes: that is the scale to hold them to.
                    var acc = Double(start[i * k + j]), scale = abs(Double(start[i * k + j]))
                    for r in 0..<m {
                        let term = Double(dy[r * n + i]) * Double(x[r * k + j])
                        acc += term
                        scale += abs(term)
                    }
                    err = max(err, abs(acc - Double(dw[i * k + j])) / max(1, scale))
                }
            }
            XCTAssertLessThan(err, 1e-6, "\(m)x\(n)x\(k)")
        }
    }

    /// Sigmoid within 2 ulp (relative 3e-7); tanh, a rational function for speed, within
    /// 4e-7 (the worst over every third float in [0, 10) is 3.1e-7 with FMA, as compiled
    /// models are built, and 3.8e-7 without, as this test's module is), never above 1 in
    /// magnitude, exactly 1 when saturated, and odd.
    func testVectorizedMathIsAccurateAndKeepsSpecialValues() {
        var worstSigmoid: Double = 0, worstTanh: Double = 0
        var x: Float = -30
        while x < 30 {
            let exact = Foundation.tanh(Double(x))
            let t = rnnc_tanhf(x)
            worstTanh = max(worstTanh, abs(Double(t) - exact) / max(abs(exact), 1e-30))
            XCTAssertLessThanOrEqual(abs(t), 1)
            XCTAssertEqual(rnnc_tanhf(-x), -t)
            let s = 1 / (1 + Foundation.exp(-Double(x)))
            worstSigmoid = max(worstSigmoid, abs(Double(rnnc_sigmoidf(x)) - s) / s)
            x += 0.001
        }
        XCTAssertLessThan(worstSigmoid, 3e-7)
        XCTAssertLessThan(worstTanh, 4e-7)
        XCTAssertEqual(rnnc_tanhf(20), 1)
        XCTAssertEqual(rnnc_tanhf(.infinity), 1)
        XCTAssertEqual(rnnc_tanhf(-.infinity), -1)
        XCTAssertEqual(rnnc_sigmoidf(.infinity), 1)
        XCTAssertLessThan(rnnc_sigmoidf(-.infinity), 1e-38)
        XCTAssertTrue(rnnc_sigmoidf(.nan).isNaN)
        XCTAssertEqual(rnnc_expf(100), .infinity)
        XCTAssertEqual(rnnc_expf(-200), 0)
        XCTAssertTrue(rnnc_tanhf(.nan).isNaN)
        XCTAssertEqual(rnnc_tanhf(-0.0).sign, .minus)
    }
}

import Foundation
