//! The roofline picture: attainable operations per second against operational intensity, the
//! SoC's roofs, and every operator as a point.

use std::path::Path;

use plotters::prelude::*;

use super::BenchReport;

/// Writes the picture to `path` as SVG.
pub fn roofline(report: &BenchReport, path: &Path) -> Result<(), String> {
    let is_svg = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    if !is_svg {
        return Err(format!(
            "--plot {}: only SVG pictures are drawn; expected a path ending in .svg",
            path.display()
        ));
    }
    draw(report, path).map_err(|e| format!("drawing {}: {e}", path.display()))
}

/// One operator's point: (intensity in operations per byte, operations per second).
fn points(report: &BenchReport) -> Vec<(String, f64, f64)> {
    report
        .entries
        .iter()
        .filter_map(|e| {
            let work = e.counted.unwrap_or(e.minimum);
            let ops = 2.0 * work.cube_macs as f64 + work.vector_ops as f64;
            let bytes = work.bytes() as f64;
            let seconds = if e.counted.is_some() {
                e.modelled_s
            } else {
                e.device.median_ms / 1e3
            };
            (ops > 0.0 && bytes > 0.0 && seconds > 0.0)
                .then(|| (format!("{} {}", e.op, e.shape), ops / bytes, ops / seconds))
        })
        .collect()
}

fn draw(report: &BenchReport, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let r = &report.roofline;
    let peak = 2.0 * r.cube_macs_per_s;
    let bandwidth = r.memory_bytes_per_s;
    let points = points(report);
    let (x_min, x_max) = (1e-2f64, 1e4f64);
    let (y_min, y_max) = (1e9, peak * 2.0);
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let source = if report.platform.backend == "sim" {
        "modelled from the simulator's counts"
    } else {
        "measured"
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Roofline of {} ({source})", report.roofline.soc),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((x_min..x_max).log_scale(), (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("operations per byte of global memory")
        .y_desc("operations per second")
        .draw()?;
    let roof: Vec<(f64, f64)> = (0..=80)
        .map(|i| {
            let x = x_min * (x_max / x_min).powf(f64::from(i) / 80.0);
            (x, (bandwidth * x).min(peak))
        })
        .collect();
    chart
        .draw_series(LineSeries::new(roof, &BLACK))?
        .label(format!(
            "roof: {:.0} TFLOPS fp16, {:.2} TB/s",
            peak / 1e12,
            bandwidth / 1e12
        ))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    for (i, (name, x, y)) in points.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(std::iter::once(Circle::new((x, y), 5, color.filled())))?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
