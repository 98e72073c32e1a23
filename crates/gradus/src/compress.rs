//! Model compression, joining a saved model to the training engine:
//! distillation of a model — a tuned ensemble, typically — into one
//! network trained on its predictions, magnitude pruning with
//! fine-tuning, and the before-and-after figures
//! every compression reports (size on disk, prediction time, the metrics
//! on held-out rows).

use std::time::Instant;

use gradus_data::{Dataset, Scaling, Target};
use gradus_train::{
    Activation, Compression, EarlyStopping, Ensemble, Metrics, NoObserver, Observer, SavedModel, TrainConfig, Trainer,
    WeightInit, probabilities,
};
use serde::Serialize;

use crate::pipeline::{ModelChoice, PipelineError, TrainJob, TrainOutcome};

/// A model's figures on held-out rows.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    /// The model file's size in bytes.
    pub bytes: usize,
    /// Milliseconds to compute the outputs of 1,000 rows already read and
    /// encoded (preprocessing included): the median of seven passes over
    /// the held-out rows, repeated to at least [`TIMED_ROWS`] rows so that
    /// a pass is long enough to time.
    pub ms_per_1000_rows: f64,
    pub metrics: Metrics,
}

/// The fewest rows a timed pass of [`figures`] predicts.
pub const TIMED_ROWS: usize = 20_000;

/// [`Figures`] of `model` on `held_out`.
pub fn figures(model: &Ensemble, held_out: &Dataset) -> Result<Figures, PipelineError> {
    let bytes = model.to_bytes().map_err(|e| PipelineError::Unsuitable(e.to_string()))?.len();
    let metrics = model.evaluate(held_out.clone())?;
    let n = held_out.n_samples().max(1);
    let repeated: Vec<usize> = (0..TIMED_ROWS.div_ceil(n) * n).map(|i| i % n).collect();
    let timed = held_out.subset(&repeated);
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let rows = timed.clone();
            let started = Instant::now();
            let out = model.outputs_of(rows);
            let seconds = started.elapsed().as_secs_f64();
            out.map(|_| seconds)
        })
        .collect::<Result<_, _>>()?;
    times.sort_by(f64::total_cmp);
    let ms_per_1000_rows = times[3] * 1e6 / repeated.len() as f64;
    Ok(Figures { bytes, ms_per_1000_rows, metrics })
}

/// What the teacher says of each row of `rows`, as targets for a student
/// with `n_outputs` outputs: for classes, the teacher's probabilities (the
/// positive class's alone for one output); for a real target, its predictions.
pub fn teacher_targets(
    teacher: &Ensemble,
    rows: &Dataset,
    n_outputs: usize,
    temperature: f32,
) -> Result<Vec<f32>, PipelineError> {
    let out = teacher.outputs_of(rows.clone())?;
    if teacher.preprocessing().classes.is_none() {
        return Ok(out);
    }
    let k = teacher.n_outputs();
    // The teacher's logits over the temperature: its probabilities softened.
    let p = probabilities(&out.iter().map(|z| z / temperature).collect::<Vec<_>>(), k);
    Ok(soft_targets(p, if k == 1 { 2 } else { k }, n_outputs))
}

/// Class probabilities, `width` a row, as soft targets for a model of
/// `n_outputs`: the positive class's alone for one output, else all.
fn soft_targets(p: Vec<f32>, width: usize, n_outputs: usize) -> Vec<f32> {
    match n_outputs {
        1 => p.chunks_exact(width).map(|row| row[1]).collect(),
        _ => p,
    }
}

/// A distilled model and how it was made.
pub struct Distilled {
    /// The student, its file recording the distillation.
    pub outcome: TrainOutcome,
    pub train_rows: usize,
    /// The rows held out for the student's validation, labelled.
    pub valid: Option<Dataset>,
}

/// Trains `student` on what `teacher` predicts for the rows of `rows`
/// (encoded as the teacher reads them, labelled): on its class
/// probabilities with soft targets (Hinton et al. 2015), softened by
/// `options.temperature` — or, for a real target, on its predictions —
/// with `options.mixup` times as many mixup rows ([`with_mixup`]).
/// `options.valid_fraction` of the rows (seeded by `options.seed`) are
/// held out, with their labels, for the student's validation.
pub fn distill(
    teacher: &Ensemble,
    rows: &Dataset,
    student: &TrainJob,
    options: &DistillOptions,
    observer: &mut dyn Observer,
) -> Result<Distilled, PipelineError> {
    let DistillOptions { valid_fraction, mixup, temperature, seed, .. } = *options;
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(PipelineError::Unsuitable(format!("the temperature must be a number > 0, got {temperature}")));
    }
    if let Some(done) = teacher.members().iter().flat_map(|m| &m.spec.compression).find(|c| c.name() == "distill") {
        return Err(PipelineError::Unsuitable(format!(
            "the model is distilled already ({}); distil the model it came from",
            done.describe()
        )));
    }
    let split = rows.split(valid_fraction, 0.0, seed)?;
    let [train, valid, _] = rows.clone().into_split(&split);
    let train = with_mixup(teacher, train, mixup, seed)?;
    let (_, n_outputs) = student.loss_and_outputs(&train)?;
    let targets = teacher_targets(teacher, &train, n_outputs, temperature)?;
    let valid = (valid.n_samples() > 0).then_some(valid);
    let mut outcome = match &train.y {
        Target::Real(_) => {
            let mut on_predictions = train.clone();
            on_predictions.y = Target::Real(targets);
            student.run_on(&on_predictions, valid.as_ref(), observer)?
        }
        Target::Classes { .. } => student.run_soft(&train, &targets, valid.as_ref(), observer)?,
    };
    // Weights the L2 penalty decayed to subnormal values (a dead unit's)
    // are 0: they change no output by more than 1e-30, and each multiply
    // by one is slow, so that the student would predict slower than the
    // one-epoch student `distill_fastest` timed.
    for w in outcome.saved.model.params_mut() {
        if w.is_subnormal() {
            *w = 0.0;
        }
    }
    // Trained at the temperature, the student's logits are the teacher's
    // over it: times the temperature, they are the teacher's own.
    if teacher.preprocessing().classes.is_some() && temperature != 1.0 {
        let k = outcome.saved.model.n_outputs();
        outcome.saved.model.rescale_outputs(&vec![temperature; k], &vec![0.0; k]);
    }
    // The student is a new network: what was done to the teacher (pruned,
    // int8) is not done to it, and it records only where it came from.
    outcome.saved.spec.compression = vec![Compression::Distilled {
        teacher: teacher.describe(),
        members: teacher.members().len(),
        rows: train.n_samples(),
    }];
    Ok(Distilled { train_rows: train.n_samples(), valid, outcome })
}

/// `rows` and `times` × as many more made by mixup (Zhang et al. 2018):
/// each a blend λ·a + (1 − λ)·b of two rows drawn at random, λ uniform in
/// [0, 1], labelled by what `teacher` predicts for it — a larger transfer
/// set for distillation, as Buciluǎ et al. 2006 built theirs. Rows with
/// text (sparse inputs) are not blended: they come back as they are.
pub fn with_mixup(teacher: &Ensemble, rows: Dataset, times: usize, seed: u64) -> Result<Dataset, PipelineError> {
    use rand::Rng as _;
    let n = rows.n_samples();
    if times == 0 || n < 2 || rows.sparse.is_some() {
        return Ok(rows);
    }
    let mut rng = gradus_data::seeded_rng(seed ^ 0x006d_6978_7570);
    let d = rows.x.cols();
    let mut blended = Vec::with_capacity(n * times * d);
    for _ in 0..n * times {
        let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
        let lambda: f32 = rng.random();
        let (ra, rb) = (rows.x.row(a), rows.x.row(b));
        blended.extend(ra.iter().zip(rb).map(|(x, y)| lambda * x + (1.0 - lambda) * y));
    }
    let mut extra = rows.subset(&[]);
    extra.x = gradus_data::Matrix::from_vec(n * times, d, blended).expect("rows x columns");
    // Placeholder targets of the rows' kind until the teacher's come.
    extra.y = rows.y.select(&vec![0; n * times]);
    let out = teacher.outputs_of(extra.clone())?;
    extra.y = match &rows.y {
        Target::Real(_) => Target::Real(out),
        Target::Classes { classes, .. } => Target::Classes {
            labels: gradus_train::predicted_classes(&out, teacher.n_outputs()),
            classes: classes.clone(),
        },
    };
    let mut all = rows;
    let mut x = std::mem::replace(&mut all.x, gradus_data::Matrix::zeros(0, 0)).as_slice().to_vec();
    x.extend_from_slice(extra.x.as_slice());
    all.x = gradus_data::Matrix::from_vec(n * (times + 1), d, x).expect("rows x columns");
    all.y = match (all.y, extra.y) {
        (Target::Real(mut a), Target::Real(b)) => {
            a.extend(b);
            Target::Real(a)
        }
        (Target::Classes { mut labels, classes }, Target::Classes { labels: more, .. }) => {
            labels.extend(more);
            Target::Classes { labels, classes }
        }
        _ => unreachable!("both targets are the rows' kind"),
    };
    Ok(all)
}

/// The students' hidden layers [`distill_fastest`] tries.
pub const STUDENTS: [&[usize]; 8] = [&[32], &[64], &[128], &[256], &[512], &[1024], &[64, 64], &[128, 128]];

/// The input scalings [`distill_fastest`] trains its student with, keeping
/// the one of least validation loss: standardising suits most tables, but
/// blows up rare pixels (min-max students of five tuned mnist_5k ensembles
/// came 0.4 points closer to them, BENCHMARKS.md).
pub const STUDENT_SCALINGS: [Scaling; 2] = [Scaling::Standard, Scaling::MinMax];

/// The L2 penalty on a student's weights (`l2/2·‖w‖²`): on the three
/// mnist_5k seeds where students fell furthest short of the ensemble,
/// 256-unit students lost 0.9 points without it and 0.2 with it
/// (BENCHMARKS.md, issue 23).
pub const STUDENT_L2: f32 = 3e-4;

/// How [`distill_fastest`] trains a student: an MLP of `hidden` ReLU
/// layers on inputs scaled by `scaling`, Adam at `lr` in batches of 64
/// with the [`STUDENT_L2`] penalty, up to `epochs` with early stopping on
/// the validation rows' labels (patience 20).
pub fn student_job(hidden: &[usize], scaling: Scaling, epochs: usize, lr: f32, seed: u64) -> TrainJob {
    TrainJob {
        model: ModelChoice::Mlp {
            hidden: hidden.to_vec(),
            activation: Activation::Relu,
            dropout: 0.0,
            init: WeightInit::Auto,
            periodic: None,
        },
        loss: None,
        scaling,
        valid_fraction: 0.0,
        balanced: false,
        config: TrainConfig {
            epochs,
            lr,
            batch_size: Some(64),
            l2: STUDENT_L2,
            early_stopping: Some(EarlyStopping::new(20)),
            seed,
            ..TrainConfig::default()
        },
        train_metrics: false,
    }
}

/// How much faster than asked [`distill_fastest`]'s timing of a student
/// must find it: two timings of one model here differ by up to ~10%, and
/// the student must still be fast enough when timed again.
pub const TIMING_MARGIN: f64 = 1.1;

/// What [`distill_fastest`] is asked for besides the teacher and the rows.
#[derive(Clone, Debug)]
pub struct DistillOptions {
    /// The student's hidden layers; `None`: of [`STUDENTS`], the one that
    /// takes longest to predict while still predicting at least `speedup`
    /// times faster than the teacher on the held-out rows — the most
    /// computation the budget affords.
    pub hidden: Option<Vec<usize>>,
    pub speedup: f64,
    /// Quantise the student to int8 ([`quantize`], on the rows) once
    /// trained: students are timed in int8, so a larger one fits the budget.
    pub int8: bool,
    pub epochs: usize,
    pub lr: f32,
    pub valid_fraction: f64,
    pub mixup: usize,
    pub temperature: f32,
    pub seed: u64,
}

/// [`distill`] into the student `options` name or choose, with each of
/// [`STUDENT_SCALINGS`], keeping the student of least validation loss;
/// with `options.int8`, quantised on `rows`. With no student named, each
/// of [`STUDENTS`] is trained for one epoch (and quantised) and timed on
/// `held_out` (a prediction's time does not depend on the weights), and
/// the slowest at least `options.speedup` times faster than `teacher_ms`
/// per 1,000 rows (by [`TIMING_MARGIN`] more) is distilled in full.
/// `progress` hears each step.
pub fn distill_fastest(
    teacher: &Ensemble,
    rows: &Dataset,
    held_out: &Dataset,
    teacher_ms: f64,
    options: &DistillOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Distilled, PipelineError> {
    let o = options;
    let int8 = if o.int8 { " in int8" } else { "" };
    let describe = |h: &[usize]| h.iter().map(usize::to_string).collect::<Vec<_>>().join("-");
    let hidden = match &o.hidden {
        Some(h) => h.clone(),
        None => {
            let mut chosen: Option<(f64, Vec<usize>)> = None;
            for hidden in STUDENTS {
                progress(&format!("timing a student of {} hidden units{int8}", describe(hidden)));
                let job = student_job(hidden, Scaling::Standard, 1, o.lr, o.seed);
                let quick = distill(teacher, rows, &job, &DistillOptions { mixup: 0, ..o.clone() }, &mut NoObserver)?;
                let mut student = quick.outcome.saved;
                if o.int8 {
                    student = quantize_one(&student, rows)?;
                }
                let ms = figures(&Ensemble::from(student), held_out)?.ms_per_1000_rows;
                progress(&format!("{ms:.3} ms per 1,000 rows, {:.1}x faster than the model", teacher_ms / ms));
                if ms * o.speedup * TIMING_MARGIN <= teacher_ms && chosen.as_ref().is_none_or(|(t, _)| ms > *t) {
                    chosen = Some((ms, hidden.to_vec()));
                }
            }
            chosen.map(|(_, h)| h).ok_or_else(|| {
                let hint = if o.int8 { "" } else { ", quantise it (--int8)" };
                PipelineError::Unsuitable(format!(
                    "no student of {} hidden units predicts {}x faster{int8} than the model ({:.3} ms per 1,000 rows); \
                     ask for less (compress --speedup, tune --distill-speedup){hint} or name one (compress --hidden)",
                    STUDENTS.map(describe).join(", "),
                    o.speedup,
                    teacher_ms
                ))
            })?
        }
    };
    let mut best: Option<(f64, Distilled)> = None;
    for scaling in STUDENT_SCALINGS {
        progress(&format!(
            "distilling into an MLP of {} hidden units, inputs scaled {}",
            describe(&hidden),
            scaling.name()
        ));
        let job = student_job(&hidden, scaling, o.epochs, o.lr, o.seed);
        let student = distill(teacher, rows, &job, o, &mut NoObserver)?;
        // Diverged or unvalidated: ranked last.
        let loss = student.outcome.report.best_valid_loss.filter(|l| l.is_finite()).unwrap_or(f64::INFINITY);
        if best.as_ref().is_none_or(|(least, _)| loss < *least) {
            best = Some((loss, student));
        }
    }
    let (_, mut student) = best.expect("at least one scaling");
    if o.int8 {
        progress("quantising the student to int8");
        student.outcome.saved = quantize_one(&student.outcome.saved, rows)?;
    }
    Ok(student)
}

/// The rounds of [`prune`]: the sparsity rises over them to its target.
pub const PRUNE_ROUNDS: usize = 10;

/// How many times the rows [`prune`] adds as mixup rows to a classifier's
/// fine-tuning rows.
pub const PRUNE_MIXUP: usize = 4;

/// Prunes every member of `model` by magnitude to `sparsity` (the share of
/// its weights set to zero) and fine-tunes what is left on the labelled
/// `rows` (encoded as the model reads them), in [`PRUNE_ROUNDS`] rounds:
/// round t of T prunes to sparsity·(1 − (1 − t/T)³), Zhu and Gupta 2017's
/// schedule, then trains up to `config.epochs` epochs with the pruned
/// weights held at zero — a classifier towards its dense self's
/// probabilities, on the rows and [`PRUNE_MIXUP`] times as many mixup rows. `valid_fraction` of the rows (seeded) are held
/// out for early stopping when `config` asks for it.
pub fn prune(
    model: &Ensemble,
    rows: &Dataset,
    sparsity: f64,
    config: &TrainConfig,
    valid_fraction: f64,
    observer: &mut dyn Observer,
) -> Result<Ensemble, PipelineError> {
    if let Some(done) = model.members().iter().flat_map(|m| &m.spec.compression).find(|c| c.name() == "prune") {
        return Err(PipelineError::Unsuitable(format!(
            "the model is pruned already ({}); prune the model it came from",
            done.describe()
        )));
    }
    if model.members().iter().any(|m| m.model.is_quantized()) {
        return Err(PipelineError::Unsuitable(
            "an int8 model predicts only and is not fine-tuned: prune the model it came from, then quantise".into(),
        ));
    }
    gradus_train::prune::magnitude_mask(model.members()[0].model.as_ref(), sparsity)?;
    let split = rows.split(valid_fraction, 0.0, config.seed)?;
    let [train_raw, valid_raw, _] = rows.clone().into_split(&split);
    let trainer = Trainer::new(config.clone())?;
    let mut members = Vec::with_capacity(model.members().len());
    // The rows fine-tuning reads: a classifier's with mixup rows (labelled
    // by the model; each member learns its own dense self's probabilities
    // on them).
    let train_raw = match train_raw.y {
        Target::Classes { .. } => with_mixup(model, train_raw, PRUNE_MIXUP, config.seed)?,
        Target::Real(_) => train_raw,
    };
    for member in model.members() {
        let prep = &member.spec.preprocessing;
        let mut train = prep.apply(&train_raw)?;
        let mut valid = (valid_raw.n_samples() > 0).then(|| prep.apply(&valid_raw)).transpose()?;
        let mut pruned = member.spec.architecture.build()?;
        pruned.params_mut().copy_from_slice(member.model.params());
        // A real target is fine-tuned in standard units, as it was trained.
        let scale = match &train.y {
            Target::Real(y) => Some(crate::pipeline::target_scale(y)?),
            Target::Classes { .. } => None,
        };
        if let Some((mean, std)) = scale {
            let standard = |d: &mut Dataset| {
                if let Target::Real(y) = &mut d.y {
                    y.iter_mut().for_each(|v| *v = ((*v as f64 - mean) / std) as f32);
                }
            };
            standard(&mut train);
            valid.iter_mut().for_each(standard);
            pruned.rescale_outputs(&[(1.0 / std) as f32], &[(-mean / std) as f32]);
        }
        // A classifier is fine-tuned towards its own dense self's
        // probabilities (soft targets), which say more than the labels.
        let soft: Option<Vec<f32>> = match &train.y {
            Target::Classes { .. } => {
                let p = member.averaged_values_of(train_raw.clone())?;
                let width = p.len() / train_raw.n_samples().max(1);
                Some(soft_targets(p.into_iter().map(|v| v as f32).collect(), width, member.model.n_outputs()))
            }
            Target::Real(_) => None,
        };
        let mut epochs = 0;
        for round in 1..=PRUNE_ROUNDS {
            let share = sparsity * (1.0 - (1.0 - round as f64 / PRUNE_ROUNDS as f64).powi(3));
            let mask = gradus_train::prune::magnitude_mask(pruned.as_ref(), share)?;
            let mut masked = gradus_train::prune::Masked::new(pruned.as_mut(), mask);
            let loss = member.spec.loss;
            let report = match &soft {
                Some(p) => trainer.fit_soft(&mut masked, loss, &train, p, valid.as_ref(), observer)?,
                None => trainer.fit(&mut masked, loss, &train, valid.as_ref(), observer)?,
            };
            epochs += report.epochs;
        }
        if let Some((mean, std)) = scale {
            pruned.rescale_outputs(&[std as f32], &[mean as f32]);
        }
        let mut spec = member.spec.clone();
        spec.compression.push(Compression::Pruned { sparsity: gradus_train::prune::sparsity(pruned.as_ref()), epochs });
        members.push(SavedModel { spec, model: pruned });
    }
    let mut out = Ensemble::weighted(members, model.weights().to_vec())?;
    if let Some(about) = model.about() {
        out.set_about(about.clone());
    }
    Ok(out)
}

/// The most rows [`quantize`] calibrates the inputs' ranges on.
pub const CALIBRATION_ROWS: usize = 2000;

/// Makes every member of `model` predict in int8 (see
/// [`gradus_train::quant`]): its dense layers' weights quantised per
/// output channel, each layer's input range calibrated on up to
/// [`CALIBRATION_ROWS`] of `rows` (encoded as the model reads them).
pub fn quantize(model: &Ensemble, rows: &Dataset) -> Result<Ensemble, PipelineError> {
    let members = model.members().iter().map(|m| quantize_one(m, rows)).collect::<Result<_, _>>()?;
    let mut out = Ensemble::weighted(members, model.weights().to_vec())?;
    if let Some(about) = model.about() {
        out.set_about(about.clone());
    }
    Ok(out)
}

/// [`quantize`] of one model.
fn quantize_one(model: &SavedModel, rows: &Dataset) -> Result<SavedModel, PipelineError> {
    if let Some(done) = model.spec.compression.iter().find(|c| c.name() == "int8") {
        return Err(PipelineError::Unsuitable(format!("the model is in int8 already ({})", done.describe())));
    }
    let n = rows.n_samples().min(CALIBRATION_ROWS);
    if n == 0 {
        return Err(PipelineError::Unsuitable(format!("{}: no rows to calibrate int8 on", rows.name)));
    }
    let calibration = rows.subset(&(0..n).collect::<Vec<_>>());
    let x = model.spec.preprocessing.apply(&calibration)?.dense_inputs().into_owned();
    let mut int8 = model.spec.architecture.build()?;
    int8.params_mut().copy_from_slice(model.model.params());
    int8.quantize(x.view())?;
    let mut spec = model.spec.clone();
    spec.compression.push(Compression::Int8 { rows: n });
    Ok(SavedModel { spec, model: int8 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradus_train::NoObserver;

    /// A logistic regression on breast_cancer: a one-logit teacher.
    fn teacher() -> (Ensemble, Dataset) {
        let job = TrainJob {
            model: ModelChoice::Logistic,
            loss: None,
            scaling: Scaling::Standard,
            valid_fraction: 0.0,
            balanced: false,
            train_metrics: false,
            config: TrainConfig { lr: 0.01, epochs: 30, ..TrainConfig::default() },
        };
        let data = job.load("builtin:breast_cancer", None).unwrap();
        let outcome = job.run_on(&data, None, &mut NoObserver).unwrap();
        (Ensemble::from(outcome.saved), data)
    }

    #[test]
    fn mixup_rows_blend_two_rows_and_carry_the_teachers_answer() {
        let (teacher, data) = teacher();
        let n = data.n_samples();
        let more = with_mixup(&teacher, data.clone(), 2, 7).unwrap();
        assert_eq!(more.n_samples(), 3 * n);
        assert_eq!(more.x.row(5), data.x.row(5), "the rows themselves come first, as they were");
        assert_eq!(more.y.labels().unwrap()[..n], data.y.labels().unwrap()[..]);
        // Each blend lies between the columns' least and greatest values.
        for j in 0..data.x.cols() {
            let column = (0..n).map(|i| data.x.row(i)[j]);
            let (lo, hi) = column.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
            assert!((n..3 * n).all(|i| (lo - 1e-3..=hi + 1e-3).contains(&more.x.row(i)[j])));
        }
        // Their labels are what the teacher predicts for them.
        let extra = more.subset(&(n..3 * n).collect::<Vec<_>>());
        let predicted = gradus_train::predicted_classes(&teacher.outputs_of(extra.clone()).unwrap(), 1);
        assert_eq!(extra.y.labels().unwrap(), predicted.as_slice());
        assert_eq!(with_mixup(&teacher, data.clone(), 0, 7).unwrap().n_samples(), n);
    }

    #[test]
    fn the_student_is_the_scaling_of_least_validation_loss_then_int8_when_asked() {
        let (teacher, data) = teacher();
        let options = DistillOptions {
            hidden: Some(vec![8]),
            speedup: 1.0,
            int8: true,
            epochs: 15,
            lr: 1e-2,
            valid_fraction: 0.3,
            mixup: 1,
            temperature: 1.0,
            seed: 3,
        };
        let mut heard = Vec::new();
        let chosen =
            distill_fastest(&teacher, &data, &data, 1.0, &options, &mut |s| heard.push(s.to_string())).unwrap();
        let losses: Vec<f64> = STUDENT_SCALINGS
            .iter()
            .map(|&scaling| {
                let job = student_job(&[8], scaling, 15, 1e-2, 3);
                let d = distill(&teacher, &data, &job, &options, &mut NoObserver).unwrap();
                d.outcome.report.best_valid_loss.unwrap()
            })
            .collect();
        assert_ne!(losses[0], losses[1], "the scalings train different students");
        assert_eq!(chosen.outcome.report.best_valid_loss, Some(losses[0].min(losses[1])), "{losses:?}");
        assert!(chosen.outcome.saved.model.is_quantized());
        let kinds: Vec<&str> = chosen.outcome.saved.spec.compression.iter().map(|c| c.name()).collect();
        assert_eq!(kinds, ["distill", "int8"]);
        assert!(
            heard.iter().any(|h| h.contains("inputs scaled minmax")) && heard.last().unwrap().contains("int8"),
            "{heard:?}"
        );
    }

    #[test]
    fn a_student_of_one_logit_learns_the_positive_probability() {
        let (teacher, data) = teacher();
        let rows = data.subset(&[0, 1, 2]);
        let two = teacher_targets(&teacher, &rows, 2, 1.0).unwrap();
        let one = teacher_targets(&teacher, &rows, 1, 1.0).unwrap();
        assert_eq!(two.len(), 6);
        for i in 0..3 {
            assert!((two[2 * i] + two[2 * i + 1] - 1.0).abs() < 1e-6);
            assert_eq!(one[i], two[2 * i + 1]);
        }
        // A temperature softens them towards one half.
        let soft = teacher_targets(&teacher, &rows, 1, 4.0).unwrap();
        for i in 0..3 {
            assert!((soft[i] - 0.5).abs() <= (one[i] - 0.5).abs() + 1e-6, "{soft:?} {one:?}");
        }
    }
}
