// Cube matmul, fp16/bf16 in, fp32 accumulation in L0C, fp32 or bf16 out, any M, N, K.
// C = A[M,K] * B[K,N] (b_trans = 0) or A[M,K] * B[N,K]^T (b_trans = 1, DeepGEMM "NT").
// AIC-only kernel: GM -(MTE2, Nd2Nz)-> L1 -(MTE1, LoadData)-> L0A/L0B -(M, Mmad)-> L0C -(FIX)-> GM.
// Pipe ordering between the stages is carried by the TQue EnQue/DeQue pairs of each position.
// Edge M tiles are zero-padded to 16 rows in L1, so no Mmad runs in 910B's GEMV mode (m = 1).
#include "kernel_operator.h"
#include "common/kernel_common.h"
#include "tiling/matmul_tiling.h"

using namespace AscendC;

namespace {

using kernels::Load2D;
using kernels::Nd2Nz;

template <typename In, typename Out>
class MatmulKernel {
public:
    __aicore__ inline void Init(GM_ADDR a, GM_ADDR b, GM_ADDR c, const MatmulTiling& t) {
        t_ = t;
        a_.SetGlobalBuffer(reinterpret_cast<__gm__ In*>(a), uint64_t(t.m) * t.k);
        b_.SetGlobalBuffer(reinterpret_cast<__gm__ In*>(b), uint64_t(t.k) * t.n);
        c_.SetGlobalBuffer(reinterpret_cast<__gm__ Out*>(c), uint64_t(t.m) * t.n);
        pipe_.InitBuffer(a1_, 2, t.base_m * t.base_k * sizeof(In));
        pipe_.InitBuffer(b1_, 2, t.base_k * t.base_n * sizeof(In));
        pipe_.InitBuffer(a2_, 2, t.base_m * t.base_k * sizeof(In));
        pipe_.InitBuffer(b2_, 2, t.base_k * t.base_n * sizeof(In));
        pipe_.InitBuffer(co1_, 1, t.base_m * t.base_n * sizeof(float));
    }

    __aicore__ inline void Process() {
        const uint32_t tilesM = (t_.m + t_.base_m - 1) / t_.base_m;
        const uint32_t tilesN = (t_.n + t_.base_n - 1) / t_.base_n;
        for (uint32_t tile = GetBlockIdx(); tile < tilesM * tilesN; tile += GetBlockNum())
            ComputeTile(tile / tilesN, tile % tilesN);
    }

private:
    __aicore__ inline void ComputeTile(uint32_t mi, uint32_t ni) {
        const uint32_t m0 = mi * t_.base_m, n0 = ni * t_.base_n;
        const uint32_t mt = kernels::Min(t_.base_m, t_.m - m0), nt = kernels::Min(t_.base_n, t_.n - n0);
        const uint32_t mp = kernels::RoundUp(mt, 16), np = kernels::RoundUp(nt, 16);
        LocalTensor<float> c = co1_.template AllocTensor<float>();
        for (uint32_t k0 = 0; k0 < t_.k; k0 += t_.base_k) {
            const uint32_t kt = kernels::Min(t_.base_k, t_.k - k0), kp = kernels::RoundUp(kt, 16);

            LocalTensor<In> a1 = a1_.template AllocTensor<In>();
            DataCopy(a1, a_[uint64_t(m0) * t_.k + k0], Nd2Nz(mt, kt, t_.k, mp));
            kernels::ZeroPadRowsNz(a1, mt, mp, kt);
            a1_.EnQue(a1);
            LocalTensor<In> b1 = b1_.template AllocTensor<In>();
            if (t_.b_trans == 0) {
                DataCopy(b1, b_[uint64_t(k0) * t_.n + n0], Nd2Nz(kt, nt, t_.n, kp));
            } else {
                DataCopy(b1, b_[uint64_t(n0) * t_.k + k0], Nd2Nz(nt, kt, t_.k, np));
            }
            b1_.EnQue(b1);

            // L1 NZ -> L0A zZ: one LoadData per 16-row band of A, walking its column blocks.
            a1 = a1_.template DeQue<In>();
            LocalTensor<In> a2 = a2_.template AllocTensor<In>();
            for (uint32_t mb = 0; mb < mp / 16; ++mb)
                LoadData(a2[mb * kp * 16], a1, Load2D(mb, kp / 16, mp / 16, false));
            a1_.FreeTensor(a1);
            a2_.EnQue(a2);

            // L1 -> L0B zN: for [K,N] each fractal is transposed on the way; for [N,K] the NZ
            // tile already is zN, so each 16-deep K band is one contiguous run of fractals.
            b1 = b1_.template DeQue<In>();
            LocalTensor<In> b2 = b2_.template AllocTensor<In>();
            for (uint32_t kb = 0; kb < kp / 16; ++kb) {
                if (t_.b_trans == 0)
                    LoadData(b2[kb * np * 16], b1, Load2D(kb, np / 16, kp / 16, true));
                else
                    LoadData(b2[kb * np * 16], b1, Load2D(kb * (np / 16), np / 16, 1, false));
            }
            b1_.FreeTensor(b1);
            b2_.EnQue(b2);

            a2 = a2_.template DeQue<In>();
            b2 = b2_.template DeQue<In>();
            MmadParams mm;
            mm.m = mp;  // zero-padded to 16 rows: never GEMV mode (m = 1), see ZeroPadRowsNz
            mm.n = nt;
            mm.k = kt;
            mm.cmatrixInitVal = k0 == 0;  // first K step overwrites L0C, later ones accumulate
            Mmad(c, a2, b2, mm);
            a2_.FreeTensor(a2);
            b2_.FreeTensor(b2);
        }
        co1_.EnQue(c);
        c = co1_.template DeQue<float>();
        const QuantMode_t quant = std::is_same<Out, float>::value  ? QuantMode_t::NoQuant
                                  : std::is_same<Out, half>::value ? QuantMode_t::F322F16
                                                                   : QuantMode_t::F322BF16;
        Fixpipe<Out, float, CFG_ROW_MAJOR>(c_[uint64_t(m0) * t_.n + n0], c, kernels::FixRows(mt, nt, mp, t_.n, quant));
        co1_.FreeTensor(c);
    }

    TPipe pipe_;
    TQue<QuePosition::A1, 1> a1_;
    TQue<QuePosition::B1, 1> b1_;
    TQue<QuePosition::A2, 1> a2_;
    TQue<QuePosition::B2, 1> b2_;
    TQue<QuePosition::CO1, 1> co1_;
    GlobalTensor<In> a_, b_;
    GlobalTensor<Out> c_;
    MatmulTiling t_;
};

template <typename In, typename Out>
__aicore__ inline void RunMatmul(GM_ADDR a, GM_ADDR b, GM_ADDR c, GM_ADDR tiling) {
    MatmulTiling t;
    kernels::LoadTiling(t, tiling);
    MatmulKernel<In, Out> k;
    k.Init(a, b, c, t);
    k.Process();
}

}  // namespace

extern "C" __global__ __aicore__ void matmul_f16_f32(GM_ADDR a, GM_ADDR b, GM_ADDR c, GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    RunMatmul<half, float>(a, b, c, tiling);
}
extern "C" __global__ __aicore__ void matmul_bf16_f32(GM_ADDR a, GM_ADDR b, GM_ADDR c, GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    RunMatmul<bfloat16_t, float>(a, b, c, tiling);
}
extern "C" __global__ __aicore__ void matmul_f16_bf16(GM_ADDR a, GM_ADDR b, GM_ADDR c, GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    RunMatmul<half, bfloat16_t>(a, b, c, tiling);
}
extern "C" __global__ __aicore__ void matmul_bf16_bf16(GM_ADDR a, GM_ADDR b, GM_ADDR c, GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    RunMatmul<bfloat16_t, bfloat16_t>(a, b, c, tiling);
}
