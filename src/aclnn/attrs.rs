//! Named values of the aclnn operators' integer attributes (cann-api-facts §4.5, §4.6 and
//! errata), so a call site says what it asks for; `value()` is what the C call takes.

macro_rules! attr_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $v:expr),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),*
        }

        impl $name {
            /// The attribute's value in the C call.
            pub const fn value(self) -> i64 {
                match self {
                    $($name::$variant => $v),*
                }
            }
        }
    };
}

attr_enum! {
    /// `aclnnMoeGatingTopK` `normType`: how logits become scores.
    GatingNorm {
        /// Softmax over the experts; the weights are not renormalised.
        Softmax = 0,
        /// Sigmoid of each logit; the weights are renormalised.
        Sigmoid = 1,
    }
}

attr_enum! {
    /// `aclnnMoeGatingTopK` `groupSelectMode`: how a group of experts is scored.
    GroupSelect {
        /// The group's best score.
        Max = 0,
        /// The sum of the group's two best scores.
        TopTwoSum = 1,
    }
}

attr_enum! {
    /// `aclnnMoeInitRoutingV2`/`V3` `dropPadMode`.
    DropPad {
        /// Every pair gets a row.
        Dropless = 0,
        /// Each expert gets `expertCapacity` rows; pairs beyond it are dropped.
        Padded = 1,
    }
}

attr_enum! {
    /// `aclnnMoeInitRoutingV2` `expertTokensCountOrCumsumFlag` (INT32 output only).
    TokenCounts {
        /// No count output.
        None = 0,
        /// Inclusive cumulative sums per expert.
        Cumsum = 1,
        /// Rows per expert.
        Counts = 2,
    }
}

attr_enum! {
    /// `aclnnMoeInitRoutingV3` `expertTokensNumType` (INT64 output).
    TokensNumType {
        /// Rows per active expert.
        Count = 1,
        /// (expert, rows) pairs.
        KeyValue = 2,
    }
}

attr_enum! {
    /// `aclnnMoeInitRoutingV3` `quantMode`.
    QuantMode {
        /// No quantisation of the expanded rows.
        None = -1,
    }
}

attr_enum! {
    /// `aclnnMoeInitRoutingV3` `rowIdxType`: what `expandedRowIdxOut` maps.
    RowIdxType {
        /// Per flat pair `t·K+k`, its expanded row, −1 pre-filled (source to destination).
        Gather = 0,
        /// Per expanded row, the flat pair it holds; the tail is not written (destination to
        /// source).
        Scatter = 1,
    }
}

attr_enum! {
    /// `aclnnMoeFinalizeRoutingV2` `dropPadMode`: layout of `expandedRowIdx` and padding.
    FinalizeLayout {
        /// Column layout (`i + k·rows`), dropless.
        ColumnDropless = 0,
        /// Column layout, drop/pad.
        ColumnPadded = 1,
        /// Row layout (`i·K + k`, as InitRoutingV2 writes it), dropless.
        RowDropless = 2,
        /// Row layout, drop/pad (−1 rows contribute nothing).
        RowPadded = 3,
    }
}

attr_enum! {
    /// `aclnnGroupedMatmulV4` `splitItem`: the output form.
    SplitItem {
        /// A list of output tensors.
        List = 0,
        /// One concatenated output tensor.
        Single = 3,
    }
}

attr_enum! {
    /// `aclnnGroupedMatmulV4` `groupType`: the dimension split into groups.
    GroupType {
        /// No grouping.
        None = -1,
        /// Split along M (MoE experts).
        SplitM = 0,
        /// Split along K.
        SplitK = 2,
    }
}

attr_enum! {
    /// `aclnnGroupedMatmulV4` `groupListType`: what `groupList` holds.
    GroupListType {
        /// Cumulative sums of the group sizes.
        Cumsum = 0,
        /// The group sizes.
        Counts = 1,
        /// `[e, 2]` (group index, size) pairs.
        Pairs = 2,
    }
}

attr_enum! {
    /// `aclnnGroupedMatmulV4` `actType` (`GMMActType`).
    GmmAct {
        /// No activation.
        None = 0,
        /// ReLU.
        Relu = 1,
        /// GELU, tanh approximation.
        GeluTanh = 2,
        /// GELU, erf form (not on A2/A3).
        GeluErf = 3,
        /// Fast GELU.
        FastGelu = 4,
        /// SiLU.
        Silu = 5,
    }
}

attr_enum! {
    /// `sparseMode` of aclnnFusedInferAttentionScore: which keys each query sees.
    SparseMode {
        /// No mask (or a full mask given): every key.
        NoMask = 0,
        /// A full `[S_q, S_kv]` mask.
        AllMask = 1,
        /// Causal aligned top-left, with the optimised 2048 × 2048 mask.
        LeftUpCausal = 2,
        /// Causal aligned bottom-right (the queries are the sequence's last tokens), with the
        /// optimised 2048 × 2048 mask.
        RightDownCausal = 3,
        /// A band of preTokens/nextTokens, with the optimised mask.
        Band = 4,
    }
}

attr_enum! {
    /// `aclnnMatmul` `cubeMathType`: how the cube treats the inputs' precision.
    CubeMathType {
        /// Compute in the inputs' type.
        KeepDtype = 0,
        /// FLOAT inputs may run as HF32 on A2/A3; no effect on fp16/bf16.
        AllowFp32DownPrecision = 1,
        /// Compute in fp16 (not for bf16 inputs).
        UseFp16 = 2,
        /// FLOAT inputs as HF32 (FLOAT only).
        UseHf32 = 3,
        /// FLOAT inputs with K > 2048 accumulate in groups on A2/A3.
        UseFp32Add = 4,
    }
}
