//! Test bodies shared by the simulator suites and their hardware twins.
//!
//! A suite file selects its backend in `setup` and instantiates the cases with `cases!`; the
//! hardware file marks them `#[ignore]` and sets them up with [`hardware`], so on a machine with
//! an NPU every twin runs with `cargo test --test '*_hardware' -- --ignored`.

#![allow(dead_code)]

#[cfg(feature = "sim")]
pub mod backend;
#[cfg(feature = "sim")]
pub mod bad_input_cases;
#[cfg(feature = "sim")]
pub mod buffer_lifetime_cases;
pub mod checkpoint;
#[cfg(feature = "sim")]
pub mod child;
pub mod expert_parallel_cases;
pub mod expert_parallel_layer_cases;
#[cfg(feature = "sim")]
pub mod fp8_gemm_cases;
pub mod hccl_cases;
pub mod hccl_mc2_cases;
#[cfg(feature = "sim")]
pub mod kernel_args_cases;
pub mod kernel_cases;
#[cfg(feature = "sim")]
pub mod kernels_cases;
#[cfg(feature = "sim")]
pub mod mla_cases;
#[cfg(feature = "sim")]
pub mod mla_fp8_cases;
#[cfg(feature = "sim")]
pub mod mla_layer_cases;
#[cfg(feature = "sim")]
pub mod mla_vendor_cases;
pub mod moe;
#[cfg(feature = "sim")]
pub mod moe_device_cases;
#[cfg(feature = "sim")]
pub mod moe_layer_cases;
pub mod moe_validation_cases;
pub mod ranks;
pub mod rng;
pub mod runtime_cases;
#[cfg(feature = "sim")]
pub mod soak_cases;
#[cfg(feature = "sim")]
pub mod validation_props_cases;
#[cfg(feature = "sim")]
pub mod vendor_matmul_cases;

pub use rng::Rng;

use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a hardware twin's setup has chosen the `cann` provider.
static ON_HARDWARE: AtomicBool = AtomicBool::new(false);

/// The setup of every hardware twin: selects the `cann` provider, whatever
/// `ASCEND_NPU_BACKEND` says, and records it so that a case's own
/// `backend::select` keeps it rather than reading the
/// variable (which would conflict with the provider chosen here when it is unset).
pub fn hardware() {
    ascend_npu::select_backend(ascend_npu::Backend::Cann)
        .unwrap_or_else(|e| panic!("a hardware twin needs CANN (source its set_env.sh): {e}"));
    ON_HARDWARE.store(true, Ordering::SeqCst);
}

/// Whether a hardware twin's setup ([`hardware`]) has chosen the provider of this process.
pub fn on_hardware() -> bool {
    ON_HARDWARE.load(Ordering::SeqCst)
}

/// A count the simulator keeps per device.
#[derive(Clone, Copy, Debug)]
pub enum SimCounter {
    /// Stream tasks (copies, event records and waits, ...).
    Tasks,
    /// Bytes aclnn operators read.
    AclnnReadBytes,
    /// Device-to-device copies (one per copy, whatever its size).
    D2dCopies,
}

/// How much `counter` of `device` grew during `work`, counted by the simulator behind the
/// active provider; `None` on an NPU. Other threads' work on `device` counts too.
pub fn count_during(
    device: &ascend_npu::Device,
    counter: SimCounter,
    work: impl FnOnce(),
) -> Option<u64> {
    device.synchronize().unwrap();
    #[cfg(feature = "sim")]
    {
        let read = |c: ascend_npu::sim::DeviceCounters| match counter {
            SimCounter::Tasks => c.tasks_executed,
            SimCounter::AclnnReadBytes => c.aclnn_read_bytes,
            SimCounter::D2dCopies => c.d2d_copies,
        };
        let before = read(backend::counters(device.id())?);
        work();
        device.synchronize().unwrap();
        Some(read(backend::counters(device.id())?) - before)
    }
    #[cfg(not(feature = "sim"))]
    {
        let _ = counter;
        work();
        None
    }
}

/// The stream tasks `device` ran for `work` ([`count_during`]).
pub fn tasks_during(device: &ascend_npu::Device, work: impl FnOnce()) -> Option<u64> {
    count_during(device, SimCounter::Tasks, work)
}

/// Instantiates each named case as a `#[test]` that runs `$setup` first.
#[macro_export]
macro_rules! cases {
    ($(#[$attr:meta])* setup = $setup:path; $module:ident: $($name:ident),* $(,)?) => {
        cases!(@each { $(#[$attr])* } $setup; $module; $($name),*);
    };
    (@each $attrs:tt $setup:path; $module:ident; $($name:ident),*) => {
        $(cases!(@one $attrs $setup; $module; $name);)*
    };
    (@one { $($attr:tt)* } $setup:path; $module:ident; $name:ident) => {
        #[test]
        $($attr)*
        fn $name() {
            $setup();
            common::$module::$name();
        }
    };
}

/// Every case of `mla_vendor_cases` (the MLA vendor operators), for a suite to instantiate.
#[macro_export]
macro_rules! mla_vendor_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            mla_vendor_cases:
            prolog_matches_the_reference,
            prolog_rope_is_not_neox,
            prolog_rejects_three_heads,
            decode_matches_the_reference,
            vendor_path_matches_the_reference,
            vendor_path_refuses_bad_calls_with_clear_errors,
            attention_paths_match_the_reference_and_each_other,
            attention_falls_back_to_our_kernels_for_three_heads,
            attention_rope_is_interleaved_not_neox,
        }
    };
}

/// Every case of `vendor_matmul_cases` (aclnnMatmul, aclnnWeightQuantBatchMatmulV2), for a
/// suite to instantiate.
#[macro_export]
macro_rules! vendor_matmul_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            vendor_matmul_cases:
            matmul_matches_the_f64_product_in_both_layouts,
            matmul_refuses_mismatched_operands,
            w8a16_matches_the_dequantized_product,
            w8a16_refuses_bad_scales,
        }
    };
}

/// Every case of `moe_device_cases`, for a suite to instantiate with its setup.
#[macro_export]
macro_rules! moe_device_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            moe_device_cases:
            routing_matches_noaux_tc,
            a_huge_bias_expert_is_chosen_but_weighted_by_its_unbiased_score,
            negative_biased_scores_never_pick_a_dropped_group,
            dispatch_is_a_stable_bijection_and_combine_inverts_it,
            expert_ids_out_of_range_fail_the_stream_with_a_message,
            grouped_matmul_matches_per_expert_products,
            grouped_matmul_group_sizes_must_sum_to_m,
            grouped_matmul_counts_only_the_experts_with_rows,
            padded_dispatch_and_combine_follow_the_reference_capacity_rules,
            v2_routing_without_renormalisation_matches_the_reference,
            local_dispatch_keeps_only_the_active_expert_range,
            bf16_logits_with_an_fp32_bias_route_like_the_reference,
            plain_top_k_and_v2_lite_route_like_the_reference,
        }
    };
}

/// The cases of `kernel_args_cases` that mean the same on an NPU, for a suite to instantiate.
#[macro_export]
macro_rules! kernel_args_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            kernel_args_cases:
            a_device_blob_launches,
            the_blob_is_read_when_the_kernel_starts_not_at_the_call,
        }
    };
}

/// The cases of `fp8_gemm_cases` that mean the same on an NPU, for a suite to instantiate.
#[macro_export]
macro_rules! fp8_gemm_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            fp8_gemm_cases:
            w8a16_matches_the_dequantized_f64_gemm_on_odd_shapes,
            w8a16_with_ue8m0_scales_matches_the_f64_gemm_for_m_1_to_16,
            device_activation_quantization_equals_the_host_reference_bit_for_bit,
            w8a8_matches_the_dequantized_f64_gemm,
            nan_codes_propagate,
            grouped_layouts_match_per_group_gemms,
            bad_inputs_are_clear_errors,
            checkpoints_load_straight_into_device_buffers,
            device_weight_quantization_and_dequantization_match_the_host_reference,
        }
    };
}

/// The cases of `kernels_cases` that mean the same on an NPU, for a suite to instantiate.
#[macro_export]
macro_rules! kernels_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            kernels_cases:
            swiglu_matches_the_f64_reference_in_every_type,
            swiglu_propagates_nan_and_handles_extremes,
            swiglu_of_nothing_launches_nothing_and_mismatches_are_errors,
            matmul_matches_the_f64_reference_for_every_type_and_layout,
            matmul_rejects_bad_shapes_and_zeroes_c_when_k_is_zero,
        }
    };
}

/// Every case of `hccl_cases`, for a suite to instantiate with its setup.
#[macro_export]
macro_rules! hccl_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            hccl_cases:
            all_reduce_folds_in_rank_order_for_each_type_and_op,
            results_are_bit_identical_from_run_to_run,
            all_gather_reduce_scatter_and_broadcast,
            all_to_all_v_delivers_every_part_in_source_order,
            send_and_recv_pass_a_token_around_a_ring,
            bad_calls_are_rejected_before_anything_is_queued,
            init_refuses_ranks_outside_the_communicator,
            init_all_builds_every_rank_in_one_call,
            split_makes_communicators_of_some_ranks,
            rank_table_file_builds_a_communicator,
            dropping_a_communicator_waits_for_its_queued_collectives,
            rank_table_paths_longer_than_hccl_reads_are_refused,
            configured_communicators_report_their_names,
        }
    };
}

/// Every case of `runtime_cases`, for a suite to instantiate with its setup.
#[macro_export]
macro_rules! runtime_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            runtime_cases:
            device_reports_count_soc_and_memory,
            the_bound_context_is_cached_per_thread_and_follows_device_switches,
            allocation_reduces_free_memory_and_drop_returns_it,
            upload_download_round_trips_every_element_type,
            empty_buffers_need_no_device_memory,
            zeroed_allocation_and_memset,
            views_copy_exactly_their_range,
            out_of_range_views_and_mismatched_lengths_are_errors,
            async_copies_through_pinned_memory,
            dropping_a_buffer_with_queued_work_is_stream_ordered,
            events_order_streams_and_time_work,
            ndarray_round_trip_in_any_layout,
            handles_move_across_threads,
            many_streams_chained_by_events_give_exact_results,
            threads_allocate_copy_and_free_concurrently,
            host_buffer_uses_are_ordered_across_streams,
            device_buffer_uses_are_ordered_across_streams,
            buffers_used_on_other_streams_are_freed_after_that_use,
            kernels_on_other_streams_are_ordered_and_keep_buffers_alive,
            same_stream_work_creates_no_event_and_cross_stream_events_are_pooled,
            pooled_blocks_are_reused_only_after_other_streams_finish_with_them,
            raw_handles_interoperate_with_use_tracking,
            dropping_a_plain_buffer_gives_its_memory_back_to_the_device,
            a_plain_buffer_is_freed_after_its_own_streams_queued_work,
            a_stream_waits_once_for_another_streams_use_and_never_again,
            a_busy_streams_use_survives_pruning_of_idle_ones,
            a_host_read_keeps_other_streams_pending_reads_tracked,
        }
    };
}

/// Every case of `moe_validation_cases`, for a suite to instantiate with its setup.
#[macro_export]
macro_rules! moe_validation_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            moe_validation_cases:
            routing_validate_rejects_each_bad_field_with_invalid_argument,
            route_refuses_bad_configurations_before_the_device,
            routing_valid_edges_match_the_reference,
            bf16_logits_route_every_method_the_operator_computes,
            non_finite_logits_keep_ids_in_range_and_other_tokens_intact,
            dispatch_rejects_each_bad_size_with_invalid_argument,
            dispatch_with_top_k_equal_to_experts_sends_every_token_to_every_expert,
            zero_tokens_or_zero_hidden_dispatch_to_empty_results,
            greedy_routing_ignores_the_group_fields,
            bf16_logits_without_a_bias_gather_unnormalised_weights,
        }
    };
}

/// Instantiates every case of `kernel_cases` (kernel binaries, shared kernels, core counts).
#[macro_export]
macro_rules! kernel_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            kernel_cases:
            a_truncated_binary_is_an_error_and_the_process_goes_on,
            files_that_are_not_binaries_are_refused_before_the_runtime,
            binaries_load_from_bytes_and_ours_are_embedded,
            one_kernels_is_shared_by_clones_across_threads_and_streams,
            cann_version_and_core_counts_agree_with_the_soc,
        }
    };
}

/// Every case of `bad_input_cases` (bad input only the device sees, overflowing sizes).
#[macro_export]
macro_rules! bad_input_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            bad_input_cases:
            bad_contiguous_offsets_are_reported_at_synchronisation_and_the_stream_recovers,
            device_quantization_of_non_finite_input_is_the_host_error,
            an_unread_report_goes_to_the_drop_errors,
            size_products_that_overflow_are_errors,
            layer_sizes_that_overflow_are_errors,
            non_finite_scales_are_rejected_and_nan_codes_propagate,
        }
    };
}

/// Every case of `validation_props_cases` (property tests of the operators' validation).
#[macro_export]
macro_rules! validation_props_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            validation_props_cases:
            fp8_gemm_rejects_or_matches_f64,
            device_quantize_rejects_or_matches_host,
            combine_rejects_or_matches_f64,
        }
    };
}

/// The case of `buffer_lifetime_cases`, alone in its test binary (it reads free memory).
#[macro_export]
macro_rules! buffer_lifetime_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            buffer_lifetime_cases:
            dropped_buffers_return_their_memory_and_slices_split_at_the_edges,
        }
    };
}

/// The bounded soak test of `soak_cases`.
#[macro_export]
macro_rules! soak_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            soak_cases:
            threads_and_streams_mixing_copies_kernels_aclnn_and_frees,
        }
    };
}

/// Every case of `moe_layer_cases` (a safetensors MoE layer against the f64 reference).
#[macro_export]
macro_rules! moe_layer_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            moe_layer_cases:
            a_safetensors_layer_matches_the_f64_reference,
            an_fp8_safetensors_layer_matches_the_f64_reference,
            bad_checkpoints_are_clear_errors,
        }
    };
}

/// The cases of `expert_parallel_cases` that mean the same on an NPU, for a suite to
/// instantiate.
#[macro_export]
macro_rules! expert_parallel_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            expert_parallel_cases:
            layout_matches_a_brute_force_count,
            normal_dispatch_orders_dedups_and_matches_the_reference,
            identity_experts_round_trip_exactly_and_replay_bit_identically,
            normal_combine_of_weighted_results_is_within_the_fp32_then_bf16_bound,
            fp8_payload_arrives_exactly_and_dequantizes_within_the_format_bound,
            low_latency_fills_the_masked_layout_and_never_reads_its_garbage,
            low_latency_slabs_fill_exactly_and_refuse_one_row_more,
            bad_inputs_are_clear_errors_on_every_rank,
            host_layout_refuses_bad_ids,
            traffic_counts_the_rows_each_dispatch_sends,
            traffic_totals_and_minimums_by_hand,
        }
        cases! {
            $(#[$attr])*
            setup = $setup;
            expert_parallel_layer_cases:
            expert_parallel_layer_equals_the_single_device_layer,
            expert_parallel_layer_with_fp8_dispatch,
            expert_parallel_layer_with_fp8_weights,
            expert_parallel_layer_with_fp8_dispatch_and_weights,
            expert_parallel_layer_takes_an_empty_rank_and_refuses_bad_arguments,
        }
    };
}
