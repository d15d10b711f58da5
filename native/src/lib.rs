//! The figure book of one partition, in Rust: `domain.figures.FigureBook`'s counters and
//! readers, rule for rule.
//!
//! `domain/figures.py` states the figures and is the reference: this module keeps the same
//! buckets (hour, Vietnam day, Vietnam month, fine instants per metric slot, due and
//! near-due marks per hour) and answers the same questions from them, without a Python
//! object per counter. `domain/native_figures.py` wraps it as `NativeFigureBook`, with the
//! Python book's interface; the unit tests run the figures' tests on both books and hold
//! them to the same answers on random histories and on the simulator's events.
//!
//! All instants are whole epoch seconds (i64). Division by a positive constant is floor
//! division, as Python's `//`.

use pyo3::exceptions::{PyIndexError, PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PySet, PyString, PyTuple};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const N: usize = 7; // metric slots: 4 channels, on time, late, became overdue
const ON_TIME: usize = 4;
const LATE: usize = 5;
const OVERDUE: usize = 6;
const VN_OFFSET: i64 = 7 * 3600;
const NEG_INF: i64 = -(1_i64 << 62);
const HOURS_KEPT: i64 = 32 * 86400;
const DAYS_KEPT: i64 = 400;
const DAY_TRIM_STEP: i64 = 7;
const HOURLY_BUCKETS: i64 = 168;
const DAILY_BUCKETS: i64 = 90;
const WINDOWS: [&str; 7] = ["1h", "24h", "7d", "30d", "mtd", "qtd", "ytd"];
const COUNT_KEYS: usize = 4 + WINDOWS.len() * (N + 1); // gauges, then per window total + slots

type Row = [i64; N];

/// A multiplicative hash for integer keys (the std hasher is built to resist collision
/// attacks, which counters keyed by hour or day do not need).
#[derive(Default)]
struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_i64(&mut self, n: i64) {
        self.0 = (self.0.rotate_left(5) ^ (n as u64)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u64(&mut self, n: u64) {
        self.write_i64(n as i64);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_i64(n as i64);
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

fn fdiv(a: i64, b: i64) -> i64 {
    a.div_euclid(b)
}

fn vn_day(t: i64) -> i64 {
    fdiv(t + VN_OFFSET, 86400)
}

fn day_start(d: i64) -> i64 {
    d * 86400 - VN_OFFSET
}

/// Month index (year * 12 + month - 1) of a day index (day 0 is 1970-01-01).
fn month_of_day(d: i64) -> i64 {
    // Days to a proleptic Gregorian date (eras of 400 years, March-based years).
    let z = d + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    year * 12 + month - 1
}

/// Day index of the first day of a month index.
fn month_start_day(month: i64) -> i64 {
    let (mut y, m) = (month.div_euclid(12), month.rem_euclid(12) + 1);
    if m <= 2 {
        y -= 1;
    }
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_nested(w: usize) -> bool {
    w == 5 || w == 6 // qtd extends mtd, ytd extends qtd
}

/// First epoch second of window `w` (an index of WINDOWS) at clock t.
fn window_start(w: usize, t: i64) -> i64 {
    match w {
        0 => (fdiv(t, 60) - 59) * 60,
        1 => (fdiv(t, 3600) - 23) * 3600,
        2 => (fdiv(t, 3600) - 167) * 3600,
        3 => (fdiv(t, 3600) - 719) * 3600,
        _ => {
            let mut month = month_of_day(vn_day(t));
            if w == 5 {
                month -= month.rem_euclid(12) % 3;
            } else if w == 6 {
                month -= month.rem_euclid(12);
            }
            day_start(month_start_day(month))
        }
    }
}

fn series_day_start(t: i64) -> i64 {
    day_start(vn_day(t) - DAILY_BUCKETS + 1)
}

fn lower_bound(xs: &[i64], x: i64) -> usize {
    xs.partition_point(|&v| v < x)
}

fn upper_bound(xs: &[i64], x: i64) -> usize {
    xs.partition_point(|&v| v <= x)
}

/// Deadline instants (due or near-due) of open, unpaused dossiers, counted by hour.
#[derive(Default)]
struct Marks {
    total: i64,
    hours: Vec<i64>, // sorted hours that hold an instant
    totals: Map<i64, i64>,
    exact: Map<i64, Map<i64, i64>>,
}

impl Marks {
    fn add(&mut self, x: i64, sign: i64) {
        self.total += sign;
        let hour = fdiv(x, 3600);
        let inner = match self.exact.get_mut(&hour) {
            Some(inner) => inner,
            None => {
                let at = upper_bound(&self.hours, hour);
                self.hours.insert(at, hour);
                self.exact.entry(hour).or_default()
            }
        };
        let c = inner.get(&x).copied().unwrap_or(0) + sign;
        if c != 0 {
            inner.insert(x, c);
        } else {
            inner.remove(&x);
        }
        let c = self.totals.get(&hour).copied().unwrap_or(0) + sign;
        if c != 0 {
            self.totals.insert(hour, c);
        } else {
            self.totals.remove(&hour);
            self.exact.remove(&hour);
            let at = lower_bound(&self.hours, hour);
            self.hours.remove(at);
        }
    }

    /// How many instants are <= t.
    fn at_or_before(&self, t: i64) -> i64 {
        let hour = fdiv(t, 3600);
        let i = lower_bound(&self.hours, hour);
        let total_of = |h: &i64| self.totals.get(h).copied().unwrap_or(0);
        let mut n = if 2 * i <= self.hours.len() {
            self.hours[..i].iter().map(total_of).sum()
        } else {
            self.total - self.hours[i..].iter().map(total_of).sum::<i64>()
        };
        if let Some(inner) = self.exact.get(&hour) {
            n += inner.iter().filter(|(&x, _)| x <= t).map(|(_, &c)| c).sum::<i64>();
        }
        n
    }

    /// True if an instant x has lo < x <= hi.
    fn any_between(&self, lo: i64, hi: i64) -> bool {
        let (h_lo, h_hi) = (fdiv(lo, 3600), fdiv(hi, 3600));
        let (a, b) = (lower_bound(&self.hours, h_lo), upper_bound(&self.hours, h_hi));
        if a >= b {
            return false;
        }
        self.hours[a..b].iter().any(|&hour| {
            (h_lo < hour && hour < h_hi)
                || self.exact.get(&hour).is_some_and(|inner| inner.keys().any(|&x| lo < x && x <= hi))
        })
    }
}

/// Counters of one scope.
#[derive(Default)]
struct Store {
    hours: Map<i64, Row>,
    days: Map<i64, Row>,
    months: Map<i64, Row>,
    fine: [Vec<i64>; N], // per slot, the sorted instants at or after the book's fine floor
    open: i64,
    due: Marks,
    near: Marks,
}

fn bump(buckets: &mut Map<i64, Row>, key: i64, slot: usize, sign: i64) {
    let row = buckets.entry(key).or_insert([0; N]);
    row[slot] += sign;
    if sign < 0 && row.iter().all(|&c| c == 0) {
        buckets.remove(&key);
    }
}

fn add_row(acc: &mut Row, row: &Row) {
    for (a, r) in acc.iter_mut().zip(row) {
        *a += r;
    }
}

/// Sums of the bucket rows covering the Vietnam days [d0, d1): whole months by their month.
fn day_rows(st: &Store, d0: i64, d1: i64, acc: &mut Row) {
    let mut m = month_of_day(d0);
    if month_start_day(m) != d0 {
        m += 1; // the first month that starts at or after d0
    }
    let lead_end = d0.max(month_start_day(m).min(d1));
    let mut tail = lead_end;
    loop {
        let end = month_start_day(m + 1);
        if end > d1 {
            break;
        }
        if let Some(row) = st.months.get(&m) {
            add_row(acc, row);
        }
        tail = end;
        m += 1;
    }
    for (lo, hi) in [(d0, lead_end), (tail, d1)] {
        for d in lo..hi {
            if let Some(row) = st.days.get(&d) {
                add_row(acc, row);
            }
        }
    }
}

/// One dossier's facts, read from a `DossierFacts` named tuple.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Facts {
    list: usize, // the interned scope list
    slot: usize, // the channel's slot
    received: i64,
    resolved: Option<i64>,
    on_time: Option<bool>,
    open: bool,
    paused: bool,
    due: Option<i64>,
    near: Option<i64>,
    became: Option<i64>,
}

impl Facts {
    /// The (slot, instant) pairs it adds to the windowed counters (at most three).
    fn items(&self) -> ([(usize, i64); 3], usize) {
        let mut out = [(self.slot, self.received); 3];
        let mut n = 1;
        if let Some(resolved) = self.resolved {
            out[n] = (if self.on_time == Some(true) { ON_TIME } else { LATE }, resolved);
            n += 1;
        }
        if let Some(became) = self.became {
            out[n] = (OVERDUE, became);
            n += 1;
        }
        (out, n)
    }

    fn gauge(&self) -> Option<(i64, i64)> {
        match (self.open && !self.paused, self.due) {
            (true, Some(due)) => Some((due, self.near.unwrap_or(due))),
            _ => None,
        }
    }
}

#[pyclass(subclass, module = "domain.figure_core")]
pub struct FigureCore {
    #[pyo3(get)]
    retention: i64,
    names: Vec<Py<PyString>>,
    index: HashMap<String, usize>,
    stores: Vec<Store>,
    lists: Vec<Vec<usize>>,           // interned scope lists (store indices)
    list_index: HashMap<Vec<usize>, usize>,
    tuples: Map<usize, (Py<PyAny>, usize)>, // scope tuple object -> list (kept alive while cached)
    dirty: Vec<bool>,
    dirty_list: Vec<usize>,
    floor: i64,
    hour_floor: i64,
    hour_pin: Option<i64>,
    max_t: i64,
    day_cut: i64,
    hour_tally: HashMap<(usize, usize, i64), i64>,
    day_tally: HashMap<(usize, usize, i64), i64>,
    empty: Store,
    channels: Vec<(usize, Py<PyAny>, usize)>, // member object (by identity) -> slot
    channel_slots: Py<PyDict>,                 // the same, looked up by equality
    count_keys: Vec<Py<PyString>>,
    too_old: Py<PyAny>,
}

const TUPLE_CACHE_MAX: usize = 1 << 16;

impl FigureCore {
    fn reset(&mut self) {
        self.names.clear();
        self.index.clear();
        self.stores.clear();
        self.lists.clear();
        self.list_index.clear();
        self.tuples.clear();
        self.dirty.clear();
        self.dirty_list.clear();
        self.floor = NEG_INF;
        self.hour_floor = NEG_INF;
        self.hour_pin = None;
        self.max_t = NEG_INF;
        self.day_cut = NEG_INF;
        self.hour_tally.clear();
        self.day_tally.clear();
    }

    fn store_of(&mut self, py: Python<'_>, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.stores.len();
        self.stores.push(Store::default());
        self.names.push(PyString::new(py, name).unbind());
        self.index.insert(name.to_owned(), i);
        self.dirty.push(false);
        i
    }

    fn list_of(&mut self, scopes: &Bound<'_, PyAny>) -> PyResult<usize> {
        let key = scopes.as_ptr() as usize;
        if let Some((_, list)) = self.tuples.get(&key) {
            return Ok(*list);
        }
        let py = scopes.py();
        let tuple = scopes.downcast::<PyTuple>()?;
        let mut ids = Vec::with_capacity(tuple.len());
        for item in tuple.iter() {
            let name = item.downcast::<PyString>()?.to_str()?.to_owned();
            ids.push(self.store_of(py, &name));
        }
        let list = match self.list_index.get(&ids) {
            Some(&list) => list,
            None => {
                let list = self.lists.len();
                self.lists.push(ids.clone());
                self.list_index.insert(ids, list);
                list
            }
        };
        if self.tuples.len() >= TUPLE_CACHE_MAX {
            self.tuples.clear();
        }
        self.tuples.insert(key, (scopes.clone().unbind(), list));
        Ok(list)
    }

    fn slot_of(&self, channel: &Bound<'_, PyAny>) -> PyResult<usize> {
        let key = channel.as_ptr() as usize;
        for (ptr, _, slot) in &self.channels {
            if *ptr == key {
                return Ok(*slot);
            }
        }
        match self.channel_slots.bind(channel.py()).get_item(channel)? {
            Some(slot) => slot.extract(),
            None => Err(PyKeyError::new_err(channel.clone().unbind())),
        }
    }

    fn facts(&mut self, f: &Bound<'_, PyAny>) -> PyResult<Option<Facts>> {
        if f.is_none() {
            return Ok(None);
        }
        let t = f.downcast::<PyTuple>()?;
        if t.len() != 10 {
            return Err(PyTypeError::new_err("expected a DossierFacts (10 fields)"));
        }
        let opt_int = |i: usize| -> PyResult<Option<i64>> {
            let v = t.get_borrowed_item(i)?;
            if v.is_none() {
                Ok(None)
            } else {
                Ok(Some(v.extract()?))
            }
        };
        let on_time = {
            let v = t.get_borrowed_item(4)?;
            if v.is_none() {
                None
            } else {
                Some(v.is_truthy()?)
            }
        };
        Ok(Some(Facts {
            list: self.list_of(&*t.get_borrowed_item(0)?)?,
            slot: self.slot_of(&*t.get_borrowed_item(1)?)?,
            received: t.get_borrowed_item(2)?.extract()?,
            resolved: opt_int(3)?,
            on_time,
            open: t.get_borrowed_item(5)?.is_truthy()?,
            paused: t.get_borrowed_item(6)?.is_truthy()?,
            due: opt_int(7)?,
            near: opt_int(8)?,
            became: opt_int(9)?,
        }))
    }

    fn mark_dirty(&mut self, list: usize) {
        for &i in &self.lists[list] {
            if !self.dirty[i] {
                self.dirty[i] = true;
                self.dirty_list.push(i);
            }
        }
    }

    fn bump_items(&mut self, list: usize, slot: usize, x: i64, sign: i64) -> PyResult<()> {
        let hour = fdiv(x, 3600);
        let day = vn_day(x);
        let month = month_of_day(day);
        let fine = x >= self.floor;
        let hourly = x >= self.hour_floor;
        for k in 0..self.lists[list].len() {
            let st = &mut self.stores[self.lists[list][k]];
            if hourly {
                bump(&mut st.hours, hour, slot, sign);
            }
            bump(&mut st.days, day, slot, sign);
            bump(&mut st.months, month, slot, sign);
            if fine {
                let instants = &mut st.fine[slot];
                if sign > 0 {
                    if instants.last().is_none_or(|&last| last <= x) {
                        instants.push(x);
                    } else {
                        let at = upper_bound(instants, x);
                        instants.insert(at, x);
                    }
                } else {
                    let at = lower_bound(instants, x);
                    if at >= instants.len() {
                        return Err(PyIndexError::new_err("list assignment index out of range"));
                    }
                    instants.remove(at);
                }
            }
        }
        Ok(())
    }

    fn bump_gauge(&mut self, list: usize, g: (i64, i64), sign: i64) {
        for k in 0..self.lists[list].len() {
            let st = &mut self.stores[self.lists[list][k]];
            st.due.add(g.0, sign);
            st.near.add(g.1, sign);
        }
    }

    fn bump_open(&mut self, list: usize, delta: i64) {
        for k in 0..self.lists[list].len() {
            let i = self.lists[list][k];
            self.stores[i].open += delta;
        }
    }

    fn apply(&mut self, f: &Facts, sign: i64) -> PyResult<()> {
        let (items, n) = f.items();
        for &(slot, x) in &items[..n] {
            self.bump_items(f.list, slot, x, sign)?;
        }
        if f.open {
            self.bump_open(f.list, sign);
        }
        if let Some(g) = f.gauge() {
            self.bump_gauge(f.list, g, sign);
        }
        self.mark_dirty(f.list);
        Ok(())
    }

    fn pinned(&self, floor: i64) -> i64 {
        match self.hour_pin {
            Some(pin) => floor.min(pin),
            None => floor,
        }
    }

    fn advance(&mut self, t: i64) {
        if t <= self.max_t {
            return;
        }
        self.max_t = t;
        let floor = fdiv(t - self.retention, 3600) * 3600;
        if floor < self.floor + 3600 {
            return;
        }
        self.floor = floor;
        self.hour_floor = self.pinned(floor - HOURS_KEPT);
        let last_gone = fdiv(self.hour_floor, 3600);
        let cut = vn_day(t) - DAYS_KEPT;
        let trim_days = cut >= self.day_cut + DAY_TRIM_STEP;
        let mut month_cut = 0;
        if trim_days {
            self.day_cut = cut;
            month_cut = month_of_day(cut);
        }
        for st in &mut self.stores {
            for instants in &mut st.fine {
                let i = lower_bound(instants, floor);
                if i > 0 {
                    instants.drain(..i);
                }
            }
            st.hours.retain(|&h, _| h >= last_gone);
            if trim_days {
                st.days.retain(|&d, _| d >= cut);
                st.months.retain(|&m, _| m >= month_cut);
            }
        }
    }

    fn fine_counts(st: &Store, a: i64, b: i64) -> Row {
        let mut out = [0; N];
        for (o, xs) in out.iter_mut().zip(&st.fine) {
            *o = (lower_bound(xs, b) - lower_bound(xs, a)) as i64;
        }
        out
    }

    /// Counts per slot of instants in [a, b); None when the kept buckets cannot tell.
    fn count(&self, st: &Store, a: i64, b: i64) -> Option<Row> {
        if a >= b {
            return Some([0; N]);
        }
        if a >= self.floor {
            return Some(Self::fine_counts(st, a, b));
        }
        if a.rem_euclid(3600) != 0 {
            return None;
        }
        let hour_b = fdiv(b, 3600);
        let tail = hour_b * 3600;
        if tail != b && tail < self.floor {
            return None;
        }
        let mut acc = [0; N];
        if !self.hour_rows(st, fdiv(a, 3600), hour_b, &mut acc) {
            return None;
        }
        if tail != b {
            add_row(&mut acc, &Self::fine_counts(st, tail, b));
        }
        Some(acc)
    }

    /// Sums of the rows covering the hours [h0, h1), whole Vietnam days by their day
    /// bucket; false when an hour bucket it needs is no longer kept.
    fn hour_rows(&self, st: &Store, h0: i64, h1: i64, acc: &mut Row) -> bool {
        if h0 >= h1 {
            return true;
        }
        let d0 = -fdiv(-(h0 + 7), 24); // first Vietnam day starting at or after hour h0
        let d1 = fdiv(h1 + 7, 24); // last Vietnam day starting at or before hour h1
        let spans: &[(i64, i64)] =
            if d0 >= d1 { &[(h0, h1)] } else { &[(h0, d0 * 24 - 7), (d1 * 24 - 7, h1)] };
        for &(lo, hi) in spans {
            if lo < hi && lo * 3600 < self.hour_floor {
                return false;
            }
            for h in lo..hi {
                if let Some(row) = st.hours.get(&h) {
                    add_row(acc, row);
                }
            }
        }
        day_rows(st, d0, d1, acc);
        true
    }

    fn too_old(&self, py: Python<'_>, t: i64) -> PyErr {
        let message = format!(
            "clock {t} is too far behind the latest clock seen ({}); fine buckets are kept for {} s",
            self.max_t, self.retention
        );
        match self.too_old.bind(py).call1((message,)) {
            Ok(exc) => PyErr::from_value(exc),
            Err(err) => err,
        }
    }

    fn must_count(&self, py: Python<'_>, st: &Store, a: i64, b: i64, t: i64) -> PyResult<Row> {
        self.count(st, a, b).ok_or_else(|| self.too_old(py, t))
    }

    fn store_named(&self, scope: &str) -> Option<&Store> {
        self.index.get(scope).map(|&i| &self.stores[i])
    }

    fn gauges(st: &Store, t: i64) -> (i64, i64, i64) {
        let overdue = st.due.at_or_before(t);
        (overdue, st.near.at_or_before(t) - overdue, st.open - overdue)
    }

    fn window_counts(&self, py: Python<'_>, st: &Store, t: i64) -> PyResult<[Row; 7]> {
        let mut out = [[0; N]; 7];
        let mut previous: Option<(i64, Row)> = None;
        for (w, slot) in out.iter_mut().enumerate() {
            let start = window_start(w, t);
            let c = match previous {
                Some((p_start, p_counts)) if is_nested(w) && start <= p_start => {
                    let mut c = self.must_count(py, st, start, p_start, t)?;
                    add_row(&mut c, &p_counts);
                    c
                }
                _ => self.must_count(py, st, start, t + 1, t)?,
            };
            previous = Some((start, c));
            *slot = c;
        }
        Ok(out)
    }

    /// A scope's gauges (open, overdue, near due, not yet due) and window counts at t.
    fn read(&mut self, py: Python<'_>, scope: &str, t: i64) -> PyResult<([i64; 4], [Row; 7])> {
        self.advance(t);
        let st = self.store_named(scope).unwrap_or(&self.empty);
        let (overdue, near, not_yet_due) = Self::gauges(st, t);
        Ok(([st.open, overdue, near, not_yet_due], self.window_counts(py, st, t)?))
    }

    fn window_index(window: &Bound<'_, PyString>) -> PyResult<usize> {
        let name = window.to_str()?;
        match WINDOWS.iter().position(|&w| w == name) {
            Some(w) => Ok(w),
            None => Err(PyValueError::new_err(format!(
                "unknown window {}; expected one of {}",
                window.repr()?,
                WINDOWS.join(", ")
            ))),
        }
    }
}

fn row_or_none<'py>(py: Python<'py>, row: Option<&Row>) -> PyResult<Bound<'py, PyAny>> {
    match row {
        Some(row) => Ok(PyList::new(py, row.iter())?.into_any()),
        None => Ok(py.None().into_bound(py)),
    }
}

#[pymethods]
impl FigureCore {
    /// `config`: (the 60 field names `counts` returns, in order; ChannelKind -> slot;
    /// the exception class of a clock too old).
    #[new]
    #[pyo3(signature = (retention, count_keys, channel_slots, too_old))]
    fn new(
        retention: i64,
        count_keys: &Bound<'_, PyTuple>,
        channel_slots: &Bound<'_, PyDict>,
        too_old: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        if retention < 3 * 3600 {
            return Err(PyValueError::new_err(format!(
                "retention must be at least 3 hours (10800 s), got {retention}"
            )));
        }
        if count_keys.len() != COUNT_KEYS {
            return Err(PyValueError::new_err(format!("expected {COUNT_KEYS} count keys")));
        }
        let mut keys = Vec::with_capacity(COUNT_KEYS);
        for key in count_keys.iter() {
            keys.push(key.downcast_into::<PyString>()?.unbind());
        }
        let mut channels = Vec::new();
        for (member, slot) in channel_slots.iter() {
            let slot: usize = slot.extract()?;
            if slot >= 4 {
                return Err(PyValueError::new_err("channel slots are 0 to 3"));
            }
            channels.push((member.as_ptr() as usize, member.unbind(), slot));
        }
        let mut core = FigureCore {
            retention,
            names: Vec::new(),
            index: HashMap::new(),
            stores: Vec::new(),
            lists: Vec::new(),
            list_index: HashMap::new(),
            tuples: Map::default(),
            dirty: Vec::new(),
            dirty_list: Vec::new(),
            floor: NEG_INF,
            hour_floor: NEG_INF,
            hour_pin: None,
            max_t: NEG_INF,
            day_cut: NEG_INF,
            hour_tally: HashMap::new(),
            day_tally: HashMap::new(),
            empty: Store::default(),
            channels,
            channel_slots: channel_slots.clone().unbind(),
            count_keys: keys,
            too_old: too_old.clone().unbind(),
        };
        core.reset();
        Ok(core)
    }

    /// Replace a dossier's contribution `before` by `after`; marks their scopes dirty.
    #[pyo3(name = "move")]
    fn move_(&mut self, before: &Bound<'_, PyAny>, after: &Bound<'_, PyAny>) -> PyResult<()> {
        let (b, a) = (self.facts(before)?, self.facts(after)?);
        if b == a {
            return Ok(());
        }
        let (b, a) = match (b, a) {
            (Some(b), Some(a)) if b.list == a.list => (b, a),
            (b, a) => {
                if let Some(b) = b {
                    self.apply(&b, -1)?;
                }
                if let Some(a) = a {
                    self.apply(&a, 1)?;
                }
                return Ok(());
            }
        };
        let list = a.list;
        let (old, n_old) = b.items();
        let (new, n_new) = a.items();
        let (old, new) = (&old[..n_old], &new[..n_new]);
        if old != new {
            for &(slot, x) in old {
                if !new.contains(&(slot, x)) {
                    self.bump_items(list, slot, x, -1)?;
                }
            }
            for &(slot, x) in new {
                if !old.contains(&(slot, x)) {
                    self.bump_items(list, slot, x, 1)?;
                }
            }
        }
        if b.open != a.open {
            self.bump_open(list, if a.open { 1 } else { -1 });
        }
        let (g_old, g_new) = (b.gauge(), a.gauge());
        if g_old != g_new {
            if let Some(g) = g_old {
                self.bump_gauge(list, g, -1);
            }
            if let Some(g) = g_new {
                self.bump_gauge(list, g, 1);
            }
        }
        self.mark_dirty(list);
        Ok(())
    }

    /// Empty the book for a rebuild.
    #[pyo3(signature = (*, now = None, keep_hours_from = None))]
    fn begin_rebuild(&mut self, now: Option<i64>, keep_hours_from: Option<i64>) {
        self.reset();
        self.hour_pin = keep_hours_from;
        if let Some(now) = now {
            self.max_t = now;
            self.floor = fdiv(now - self.retention, 3600) * 3600;
            self.hour_floor = self.pinned(self.floor - HOURS_KEPT);
        }
    }

    /// Add one dossier's contribution during a rebuild (`move(None, f)` without marks).
    fn add(&mut self, f: &Bound<'_, PyAny>) -> PyResult<()> {
        let Some(f) = self.facts(f)? else {
            return Ok(());
        };
        let (items, n) = f.items();
        for &(slot, x) in &items[..n] {
            if x >= self.floor {
                self.bump_items(f.list, slot, x, 1)?;
            } else if x >= self.hour_floor {
                *self.hour_tally.entry((f.list, slot, fdiv(x, 3600))).or_insert(0) += 1;
            } else {
                *self.day_tally.entry((f.list, slot, vn_day(x))).or_insert(0) += 1;
            }
        }
        if f.open {
            self.bump_open(f.list, 1);
        }
        if let Some(g) = f.gauge() {
            self.bump_gauge(f.list, g, 1);
        }
        Ok(())
    }

    /// Add retired rows ({day: {scope: [7 counts]}}) during a rebuild: day and month
    /// buckets only.
    fn add_retired_rows(&mut self, rows: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = rows.py();
        for (day, by_scope) in rows.iter() {
            let day: i64 = day.extract()?;
            let month = month_of_day(day);
            for (scope, counts) in by_scope.downcast::<PyDict>()?.iter() {
                let name = scope.downcast::<PyString>()?.to_str()?.to_owned();
                let i = self.store_of(py, &name);
                let counts: Vec<i64> = counts.extract()?;
                let st = &mut self.stores[i];
                for (buckets, bucket) in [(&mut st.days, day), (&mut st.months, month)] {
                    let row = buckets.entry(bucket).or_insert([0; N]);
                    for (slot, &n) in counts.iter().enumerate() {
                        if slot >= N {
                            return Err(PyIndexError::new_err("list index out of range"));
                        }
                        row[slot] += n;
                    }
                }
            }
        }
        Ok(())
    }

    /// Finish a rebuild: the tallied buckets added; every scope is dirty.
    fn end_rebuild(&mut self) {
        let mut days = std::mem::take(&mut self.day_tally);
        for ((list, slot, hour), n) in std::mem::take(&mut self.hour_tally) {
            for k in 0..self.lists[list].len() {
                let st = &mut self.stores[self.lists[list][k]];
                st.hours.entry(hour).or_insert([0; N])[slot] += n;
            }
            *days.entry((list, slot, vn_day(hour * 3600))).or_insert(0) += n;
        }
        for ((list, slot, day), n) in days {
            let month = month_of_day(day);
            for k in 0..self.lists[list].len() {
                let st = &mut self.stores[self.lists[list][k]];
                st.days.entry(day).or_insert([0; N])[slot] += n;
                st.months.entry(month).or_insert([0; N])[slot] += n;
            }
        }
        self.dirty_list.clear();
        for i in 0..self.dirty.len() {
            self.dirty[i] = true;
            self.dirty_list.push(i);
        }
    }

    /// Scopes changed by `move` or a rebuild since the last `clear_dirty`.
    fn dirty_scopes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PySet>> {
        PySet::new(py, self.dirty_list.iter().map(|&i| self.names[i].bind(py)))
    }

    fn clear_dirty(&mut self) {
        for &i in &self.dirty_list {
            self.dirty[i] = false;
        }
        self.dirty_list.clear();
    }

    /// Every scope a dossier has counted in since the last rebuild, sorted.
    fn scopes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut names: Vec<&String> = self.index.keys().collect();
        names.sort();
        PyList::new(py, names)
    }

    /// Every instant the fine lists hold, of every scope (what the book keeps exactly).
    fn fine_instants(&self) -> Vec<i64> {
        self.stores.iter().flat_map(|st| st.fine.iter().flatten().copied()).collect()
    }

    /// The Vietnam days a scope's day buckets hold, in order.
    fn kept_days(&self, scope: &str) -> Vec<i64> {
        let mut days: Vec<i64> =
            self.store_named(scope).map(|st| st.days.keys().copied().collect()).unwrap_or_default();
        days.sort_unstable();
        days
    }

    /// Keep the hour buckets from t on, however far the clock runs ahead.
    fn keep_hours_from(&mut self, t: i64) {
        self.hour_pin = Some(t);
        self.hour_floor = self.hour_floor.min(t);
    }

    /// The additive fields of a scope's snapshot at clock t, named as in Redis.
    fn counts<'py>(&mut self, py: Python<'py>, scope: &str, t: i64) -> PyResult<Bound<'py, PyDict>> {
        let (gauges, windows) = self.read(py, scope, t)?;
        let out = PyDict::new(py);
        let keys = &self.count_keys;
        for (key, n) in keys.iter().zip(gauges) {
            out.set_item(key.bind(py), n)?;
        }
        let mut k = gauges.len();
        for c in &windows {
            out.set_item(keys[k].bind(py), c[0] + c[1] + c[2] + c[3])?;
            for (slot, n) in c.iter().enumerate() {
                out.set_item(keys[k + 1 + slot].bind(py), n)?;
            }
            k += N + 1;
        }
        Ok(out)
    }

    /// (open, overdue, near due, not yet due, [7 slot counts per window]) of a scope at t.
    fn figures<'py>(&mut self, py: Python<'py>, scope: &str, t: i64) -> PyResult<Bound<'py, PyTuple>> {
        let (gauges, windows) = self.read(py, scope, t)?;
        let rows = PyList::empty(py);
        for c in &windows {
            rows.append(PyList::new(py, c.iter())?)?;
        }
        let [open, overdue, near, not_yet_due] = gauges;
        Ok((open, overdue, near, not_yet_due, rows).into_pyobject(py)?)
    }

    /// The hourly (168) and daily (90) bucket rows of a scope at clock t: two lists of
    /// (bucket start, [7 slot counts]), buckets with no row left out.
    fn series_rows<'py>(&mut self, py: Python<'py>, scope: &str, t: i64) -> PyResult<Bound<'py, PyTuple>> {
        self.advance(t);
        let st = self.store_named(scope).unwrap_or(&self.empty);
        let hour_t = fdiv(t, 3600);
        if (hour_t - HOURLY_BUCKETS) * 3600 < self.hour_floor {
            return Err(self.too_old(py, t));
        }
        let hourly = PyList::empty(py);
        for h in hour_t - HOURLY_BUCKETS + 1..hour_t {
            if let Some(row) = st.hours.get(&h) {
                hourly.append((h * 3600, row_or_none(py, Some(row))?))?;
            }
        }
        let last = self.must_count(py, st, hour_t * 3600, t + 1, t)?;
        hourly.append((hour_t * 3600, row_or_none(py, Some(&last))?))?;
        let day_t = vn_day(t);
        let daily = PyList::empty(py);
        for d in day_t - DAILY_BUCKETS + 1..day_t {
            if let Some(row) = st.days.get(&d) {
                daily.append((day_start(d), row_or_none(py, Some(row))?))?;
            }
        }
        let last = self.must_count(py, st, day_start(day_t), t + 1, t)?;
        daily.append((day_start(day_t), row_or_none(py, Some(&last))?))?;
        PyTuple::new(py, [hourly, daily])
    }

    /// Per scope (fields left out), the became-overdue instants in each hour bucket of
    /// [h0, h1), nonzero counts only.
    fn overdue_between<'py>(&self, py: Python<'py>, h0: i64, h1: i64) -> PyResult<Bound<'py, PyDict>> {
        let (first, last) = (fdiv(h0, 3600), fdiv(h1, 3600));
        let out = PyDict::new(py);
        for (i, st) in self.stores.iter().enumerate() {
            let name = self.names[i].bind(py);
            if name.to_str()?.starts_with("field:") {
                continue;
            }
            let mut found: Vec<(i64, i64)> = if last - first <= st.hours.len() as i64 {
                (first..last)
                    .filter_map(|h| st.hours.get(&h).map(|row| (h, row[OVERDUE])))
                    .collect()
            } else {
                st.hours
                    .iter()
                    .filter(|(&h, _)| first <= h && h < last)
                    .map(|(&h, row)| (h, row[OVERDUE]))
                    .collect()
            };
            found.retain(|&(_, n)| n != 0);
            if found.is_empty() {
                continue;
            }
            found.sort_unstable();
            let counts = PyDict::new(py);
            for (h, n) in found {
                counts.set_item(h * 3600, n)?;
            }
            out.set_item(name, counts)?;
        }
        Ok(out)
    }

    /// `near_due_now` at clock t of each of these scopes that has dossiers.
    fn near_due_at<'py>(&self, scopes: &Bound<'py, PyAny>, t: i64) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(scopes.py());
        for scope in scopes.try_iter()? {
            let scope = scope?;
            let name = scope.downcast::<PyString>()?.to_str()?;
            if let Some(st) = self.store_named(name) {
                out.set_item(&scope, st.near.at_or_before(t) - st.due.at_or_before(t))?;
            }
        }
        Ok(out)
    }

    /// (received, received online full or partial) over `window` at clock t.
    fn received_in(&mut self, py: Python<'_>, scope: &str, window: &Bound<'_, PyString>, t: i64) -> PyResult<(i64, i64)> {
        self.advance(t);
        let Some(st) = self.store_named(scope) else {
            return Ok((0, 0));
        };
        let w = Self::window_index(window)?;
        let c = self.must_count(py, st, window_start(w, t), t + 1, t)?;
        Ok((c[0] + c[1] + c[2] + c[3], c[1] + c[2]))
    }

    /// Scopes whose snapshot or series at t1 may differ from those at t0, with no event.
    fn scopes_changed_between<'py>(&mut self, py: Python<'py>, t0: i64, t1: i64) -> PyResult<Bound<'py, PySet>> {
        let changed = PySet::empty(py)?;
        if t0 == t1 {
            return Ok(changed);
        }
        let (lo, hi) = (t0.min(t1), t0.max(t1));
        self.advance(hi);
        let mut ranges = vec![(lo + 1, hi + 1)];
        let mut starts: Vec<(i64, i64)> =
            (0..WINDOWS.len()).map(|w| (window_start(w, lo), window_start(w, hi))).collect();
        starts.push((series_day_start(lo), series_day_start(hi)));
        for (s0, s1) in starts {
            if s1 > s0 {
                ranges.push((s0, s1.min(lo + 1)));
            }
        }
        for (i, st) in self.stores.iter().enumerate() {
            let moved = st.due.any_between(lo, hi)
                || st.near.any_between(lo, hi)
                || ranges.iter().any(|&(a, b)| match self.count(st, a, b) {
                    None => true,
                    Some(c) => c.iter().any(|&n| n != 0),
                });
            if moved {
                changed.add(self.names[i].bind(py))?;
            }
        }
        Ok(changed)
    }
}

#[pymodule]
fn figure_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FigureCore>()?;
    Ok(())
}
