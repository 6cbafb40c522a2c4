//! The tracker's motion model: a constant-velocity Kalman filter on a box's centre, width and
//! height (the XYWH form of ByteTrack's / BoT-SORT's filter), in continuous time.
//!
//! With that model's block-diagonal transition and diagonal noises, the eight-dimensional
//! filter splits exactly into four independent two-state filters (position and velocity of
//! `cx`, `cy`, `w`, `h`): [`Axis`] is one of them, [`BoxFilter`] the four together. Noise is
//! proportional to the box's size (a person far away moves fewer normalized units) and grows
//! with elapsed time, so irregular frame times (drops, `detect_every`) are handled exactly.

use crate::geom::BBox;

/// Noise levels, as fractions of the box's width (for `cx`, `w`) or height (for `cy`, `h`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Noise {
    /// Measurement noise: standard deviation of a detected box's edges.
    pub measure: f32,
    /// Process noise of the position, standard deviation after one second.
    pub position: f32,
    /// Process noise of the velocity (sizes per second), standard deviation after one second.
    pub velocity: f32,
    /// Initial uncertainty of the velocity of a new track (sizes per second).
    pub initial_velocity: f32,
}

impl Default for Noise {
    /// ByteTrack's weights (1/20 for positions, 1/160 for velocities per frame at 30 fps),
    /// turned into per-second rates: 1/20·√30 and 30/160·√30.
    fn default() -> Self {
        Noise {
            measure: 0.05,
            position: 0.274,
            velocity: 1.03,
            initial_velocity: 1.875,
        }
    }
}

/// Position and velocity of one coordinate, with their covariance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    pub x: f32,
    pub v: f32,
    pxx: f32,
    pxv: f32,
    pvv: f32,
}

impl Axis {
    fn new(x: f32, sx: f32, sv: f32) -> Axis {
        Axis {
            x,
            v: 0.0,
            pxx: sx * sx,
            pxv: 0.0,
            pvv: sv * sv,
        }
    }

    /// Move `dt` seconds ahead; `qx`, `qv` are the process variances for that time.
    fn predict(&mut self, dt: f32, qx: f32, qv: f32) {
        self.x += self.v * dt;
        self.pxx += 2.0 * dt * self.pxv + dt * dt * self.pvv + qx;
        self.pxv += dt * self.pvv;
        self.pvv += qv;
    }

    /// Fold in a measurement `z` of the position with variance `r`.
    fn update(&mut self, z: f32, r: f32) {
        let s = self.pxx + r;
        if s <= 0.0 || !s.is_finite() || !z.is_finite() {
            return;
        }
        let (kx, kv) = (self.pxx / s, self.pxv / s);
        let y = z - self.x;
        self.x += kx * y;
        self.v += kv * y;
        self.pvv -= kv * self.pxv;
        self.pxv *= 1.0 - kx;
        self.pxx *= 1.0 - kx;
    }
}

/// A box's state: centre x, centre y, width, height, each with its velocity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxFilter {
    axes: [Axis; 4],
    noise: Noise,
}

fn xywh(b: &BBox) -> [f32; 4] {
    let c = b.center();
    [c.x, c.y, b.w(), b.h()]
}

impl BoxFilter {
    pub fn new(b: &BBox, noise: Noise) -> BoxFilter {
        let m = xywh(b);
        let scale = [m[2], m[3], m[2], m[3]];
        let axes = std::array::from_fn(|i| {
            Axis::new(
                m[i],
                2.0 * noise.measure * scale[i],
                noise.initial_velocity * scale[i],
            )
        });
        BoxFilter { axes, noise }
    }

    /// The box now described by the state (never degenerate).
    pub fn bbox(&self) -> BBox {
        let [cx, cy, w, h] = self.axes.map(|a| a.x);
        BBox::from_center(cx, cy, w.max(1e-4), h.max(1e-4))
    }

    /// The box `dt` seconds ahead, without changing the state.
    pub fn peek(&self, dt: f32) -> BBox {
        let mut f = *self;
        f.predict(dt, true);
        f.bbox()
    }

    /// Velocity of the centre, normalized units per second.
    pub fn velocity(&self) -> (f32, f32) {
        (self.axes[0].v, self.axes[1].v)
    }

    fn scales(&self) -> [f32; 4] {
        let (w, h) = (self.axes[2].x.max(1e-3), self.axes[3].x.max(1e-3));
        [w, h, w, h]
    }

    /// Move the state `dt` seconds ahead. `freeze_size`: a track not seen lately keeps its
    /// size (its size velocity is zeroed, as ByteTrack does for lost tracks).
    pub fn predict(&mut self, dt: f32, freeze_size: bool) {
        let dt = dt.max(0.0);
        if dt == 0.0 {
            return;
        }
        if freeze_size {
            self.axes[2].v = 0.0;
            self.axes[3].v = 0.0;
        }
        let s = self.scales();
        let n = self.noise;
        for (a, s) in self.axes.iter_mut().zip(s) {
            let (qx, qv) = ((n.position * s).powi(2) * dt, (n.velocity * s).powi(2) * dt);
            a.predict(dt, qx, qv);
        }
    }

    /// Fold in a detected box.
    pub fn update(&mut self, b: &BBox) {
        let z = xywh(b);
        let s = self.scales();
        for ((a, z), s) in self.axes.iter_mut().zip(z).zip(s) {
            a.update(z, (self.noise.measure * s).powi(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_walk_is_learnt_and_predicted() {
        let mut f = BoxFilter::new(&BBox::from_center(0.1, 0.5, 0.05, 0.2), Noise::default());
        // 0.2 units per second to the right, observed at 5 fps.
        for i in 1..=20 {
            f.predict(0.2, false);
            f.update(&BBox::from_center(0.1 + 0.04 * i as f32, 0.5, 0.05, 0.2));
        }
        let (vx, vy) = f.velocity();
        assert!((vx - 0.2).abs() < 0.02, "vx {vx}");
        assert!(vy.abs() < 0.01, "vy {vy}");
        let ahead = f.peek(0.5).center();
        assert!((ahead.x - 1.0).abs() < 0.02, "{ahead:?}");
        // Peeking changes nothing.
        assert!((f.bbox().center().x - 0.9).abs() < 0.01);
    }

    #[test]
    fn measurements_are_smoothed_not_copied() {
        let b = BBox::from_center(0.5, 0.5, 0.05, 0.2);
        let mut f = BoxFilter::new(&b, Noise::default());
        for _ in 0..10 {
            f.predict(0.1, false);
            f.update(&b);
        }
        // A single jump of 0.02 (40 % of the width) moves the estimate only part of the way.
        f.predict(0.1, false);
        f.update(&BBox::from_center(0.52, 0.5, 0.05, 0.2));
        let x = f.bbox().center().x;
        assert!(x > 0.5 && x < 0.52, "{x}");
    }

    #[test]
    fn uncertainty_grows_with_time_and_shrinks_with_measurements() {
        let mut a = Axis::new(0.0, 0.01, 0.1);
        let p0 = a.pxx;
        a.predict(1.0, 1e-4, 1e-4);
        assert!(a.pxx > p0);
        let p1 = a.pxx;
        a.update(0.0, 1e-4);
        assert!(a.pxx < p1);
        assert!(a.pvv > 0.0 && a.pxx > 0.0);
    }
}
