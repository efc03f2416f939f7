//! The roofline picture: attainable operations per second against operational intensity, the
//! SoC's roofs, and every operator as a point. The file's extension chooses the format: SVG
//! (text as SVG text, no font needed) or PNG (plotters' bitmap backend, text drawn from a
//! TrueType font found on the machine).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

use super::BenchReport;

/// Names a TrueType font for PNG text, before the usual places are searched.
pub const FONT_VAR: &str = "ASCEND_NPU_FONT";

/// Where PNG text fonts usually are (Debian/Ubuntu, Fedora/RHEL, Arch, macOS).
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
];

/// Writes the picture to `path`, as SVG or PNG by its extension.
pub fn roofline(report: &BenchReport, path: &Path) -> Result<(), String> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let drawn = match extension.as_deref() {
        Some("svg") => draw(
            NaiveText(SVGBackend::new(path, SIZE)).into_drawing_area(),
            report,
        ),
        Some("png") => {
            register_font()?;
            draw(BitMapBackend::new(path, SIZE).into_drawing_area(), report)
        }
        _ => {
            return Err(format!(
                "--plot {}: the picture's format comes from the extension; expected a path \
                 ending in .svg or .png",
                path.display()
            ));
        }
    };
    drawn.map_err(|e| format!("drawing {}: {e}", path.display()))
}

/// Pixels of the picture: the plot, then the legend beside it.
const SIZE: (u32, u32) = (1300, 600);
/// Pixels of the plot's width.
const PLOT_WIDTH: u32 = 900;

/// Registers the first TrueType font of [`FONT_VAR`] or [`FONT_PATHS`] as the sans-serif
/// family, once per process.
fn register_font() -> Result<(), String> {
    static REGISTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let chosen = std::env::var_os(FONT_VAR).map(PathBuf::from);
            let candidates: Vec<PathBuf> = chosen
                .iter()
                .cloned()
                .chain(FONT_PATHS.iter().map(PathBuf::from))
                .collect();
            let (path, bytes) = candidates
                .iter()
                .find_map(|p| std::fs::read(p).ok().map(|b| (p, b)))
                .ok_or_else(|| {
                    format!(
                        "a PNG picture needs a TrueType font for its text, and none was found \
                         ({FONT_VAR} {}; searched {}); set {FONT_VAR} to a .ttf file, or write \
                         an .svg picture, which needs none",
                        chosen
                            .as_ref()
                            .map_or("unset".to_string(), |p| format!("= {}", p.display())),
                        FONT_PATHS.join(", ")
                    )
                })?;
            // The font lives as long as the process: plotters keeps a 'static reference.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| {
                format!(
                    "{} is not a TrueType font plotters can read",
                    path.display()
                )
            })
        })
        .clone()
}

/// A backend whose text sizes are estimated from the character count, as SVG viewers lay
/// text out themselves: SVG pictures then need no font file.
struct NaiveText<B>(B);

impl<B: DrawingBackend> DrawingBackend for NaiveText<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_text(text, style, pos)
    }

    /// About 0.52 em per character and 1 em of height (sans-serif text, Latin letters and
    /// digits).
    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<B::ErrorType>> {
        let em = style.size();
        let width = 0.52 * em * text.chars().count() as f64;
        Ok((width.ceil() as u32, em.ceil() as u32))
    }
}

/// One operator's point: (intensity in operations per byte, operations per second).
fn points(report: &BenchReport) -> Vec<(String, f64, f64)> {
    report
        .entries
        .iter()
        .filter_map(|e| {
            let work = e.counted.unwrap_or(e.minimum);
            let ops = 2.0 * work.cube_macs as f64 + work.vector_ops as f64;
            // Intensity against HBM, the roof: ring traffic that stays in L2 is not on it.
            let bytes = work.hbm_bytes() as f64;
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

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    report: &BenchReport,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let r = &report.roofline;
    let peak = 2.0 * r.cube_macs_per_s;
    let bandwidth = r.memory_bytes_per_s;
    let points = points(report);
    let (x_min, x_max) = (1e-2f64, 1e4f64);
    // Down to 10 MOPS: one-element cases sit there, dominated by the launch.
    let (y_min, y_max) = (1e7, peak * 2.0);
    root.fill(&WHITE)?;
    let source = if report.platform.backend == "sim" {
        "modelled from the simulator's counts"
    } else {
        "measured"
    };
    let (plot, side) = root.split_horizontally(PLOT_WIDTH);
    let mut chart = ChartBuilder::on(&plot)
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
        .x_label_formatter(&|v| format!("{v}"))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()?;
    let roof: Vec<(f64, f64)> = (0..=80)
        .map(|i| {
            let x = x_min * (x_max / x_min).powf(f64::from(i) / 80.0);
            (x, (bandwidth * x).min(peak))
        })
        .collect();
    chart.draw_series(LineSeries::new(roof, &BLACK))?;
    let mut legend = vec![(
        format!(
            "roof: {:.0} TFLOPS fp16, {:.2} TB/s",
            peak / 1e12,
            bandwidth / 1e12
        ),
        None,
    )];
    for (i, (name, x, y)) in points.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart.draw_series(std::iter::once(Circle::new((x, y), 5, color.filled())))?;
        legend.push((name, Some(color)));
    }
    draw_legend(&side, &legend)?;
    root.present()?;
    Ok(())
}

/// Font size of the legend, pixels.
const LEGEND_TEXT: f64 = 13.0;

/// The legend, beside the plot: the roof (a line), then each operator's
/// colour. Laid out here, from the same text-size estimate as SVG text, rather than by
/// plotters' series labels, whose layout needs a font file even for SVG.
fn draw_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    entries: &[(String, Option<RGBAColor>)],
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let line = (LEGEND_TEXT * 1.3).ceil() as i32;
    let longest = entries
        .iter()
        .map(|e| e.0.chars().count())
        .max()
        .unwrap_or(0);
    let box_w = (0.52 * LEGEND_TEXT * longest as f64).ceil() as i32 + 40;
    let box_h = line * entries.len() as i32 + 10;
    // Level with the top of the plot, below the caption.
    let (x0, y0) = (5, 55);
    let (x1, y1) = (x0 + box_w, y0 + box_h);
    root.draw(&Rectangle::new(
        [(x0, y0), (x1, y1)],
        WHITE.mix(0.8).filled(),
    ))?;
    root.draw(&Rectangle::new([(x0, y0), (x1, y1)], BLACK))?;
    let style = ("sans-serif", LEGEND_TEXT)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (text, color)) in entries.iter().enumerate() {
        let y = y0 + 5 + line * i as i32 + line / 2;
        match color {
            Some(c) => root.draw(&Circle::new((x0 + 15, y), 4, c.filled()))?,
            None => root.draw(&PathElement::new(vec![(x0 + 5, y), (x0 + 25, y)], BLACK))?,
        }
        root.draw(&Text::new(text.clone(), (x0 + 32, y), style.clone()))?;
    }
    Ok(())
}
