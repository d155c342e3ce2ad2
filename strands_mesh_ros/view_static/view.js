// The fleet view page: one three.js world with every robot's URDF, fed by /api/events (SSE).
// Frames: the world root turns ROS's z-up (REP-103) into three.js's y-up; robots stand in a row
// along x, SPACING apart, each moved by its base pose (odometry) from its own slot.
import * as THREE from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';
import URDFLoader from './vendor/urdf-loader/src/URDFLoader.js';

const SPACING = 1.2;  // m between robot slots: wider than the built-in arm's reach (~0.9 m)
const COLORS = [0x4e9af1, 0xf1a14e, 0x5fd27a, 0xc77dff, 0xf1e04e, 0x4ee0f1];
const ESTOP_COLOR = 0xff2020;

const world = document.getElementById('world');
const panels = document.getElementById('panels');
const banner = document.getElementById('estop-banner');
const conn = document.getElementById('conn');

const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
renderer.setPixelRatio(window.devicePixelRatio || 1);
world.appendChild(renderer.domElement);
const scene = new THREE.Scene();
scene.background = new THREE.Color(0x15181c);
const camera = new THREE.PerspectiveCamera(45, 1, 0.05, 200);
scene.add(new THREE.HemisphereLight(0xffffff, 0x303040, 2.0));
const sun = new THREE.DirectionalLight(0xffffff, 2.0);
sun.position.set(3, 6, 4);
scene.add(sun);
const controls = new OrbitControls(camera, renderer.domElement);  // drag to orbit, wheel to zoom
let framed = -1;  // robots the camera was framed for: reframed only when that changes
const root = new THREE.Group();       // ROS frame: x forward, y left, z up
root.rotation.x = -Math.PI / 2;
scene.add(root);
const grid = new THREE.GridHelper(40, 80, 0x3a4048, 0x262b31);
scene.add(grid);

const robots = new Map();  // id -> {slot, group, urdf, state: 'pending'|'loaded'|'none', color, panel, label}
const loader = new URDFLoader();
// Meshes named by a URDF (package:// or file paths) are not served: draw a small box instead,
// so the robot's kinematics still show.
loader.loadMeshCb = (path, manager, done) => {
  done(new THREE.Mesh(new THREE.BoxGeometry(0.05, 0.05, 0.05), new THREE.MeshPhongMaterial({ color: 0x888888 })));
};

function resize() {
  const w = world.clientWidth || 640, h = world.clientHeight || 480;
  renderer.setSize(w, h);
  camera.aspect = w / h;
  camera.updateProjectionMatrix();
}
window.addEventListener('resize', resize);

function frameCamera(n) {
  if (n === framed) return;  // keep the user's orbit
  framed = n;
  const width = Math.max(1, n) * SPACING;
  const d = Math.max(2.0, width * 0.95);
  camera.position.set(0, d * 0.7, d * 1.05);
  controls.target.set(0, 0.3, 0);
  controls.update();
}

function label(text) {
  const c = document.createElement('canvas');
  const font = 'bold 36px sans-serif';
  let g = c.getContext('2d');
  g.font = font;
  c.width = Math.ceil(g.measureText(text).width) + 16; c.height = 48;
  g = c.getContext('2d');  // resizing the canvas reset its state
  g.font = font; g.fillStyle = '#ffffff'; g.textAlign = 'center'; g.textBaseline = 'middle';
  g.fillText(text, c.width / 2, 24);
  const s = new THREE.Sprite(new THREE.SpriteMaterial({ map: new THREE.CanvasTexture(c), depthTest: false }));
  s.scale.set(0.1 * c.width / c.height, 0.1, 1);
  return s;
}

function tint(obj, color) {
  obj.traverse(o => {
    if (o.isMesh && !o.userData.keep) {
      o.material = new THREE.MeshPhongMaterial({ color, shininess: 40 });
    }
  });
}

function placeholder() {
  // a peer without a model: a short translucent column, so it still has a place in the world
  const m = new THREE.Mesh(new THREE.CylinderGeometry(0.12, 0.12, 0.3, 16),
    new THREE.MeshPhongMaterial({ color: 0x8899aa, transparent: true, opacity: 0.5 }));
  m.rotation.x = Math.PI / 2;
  m.position.z = 0.15;
  m.userData.keep = true;
  return m;
}

async function loadModel(r, id) {
  r.state = 'loading';
  try {
    const res = await fetch('/api/description/' + encodeURIComponent(id));
    if (!res.ok) throw new Error('HTTP ' + res.status);
    const urdf = loader.parse(await res.text());
    r.urdf = urdf;
    r.body.add(urdf);
    tint(urdf, r.color);
    r.state = 'loaded';
    document.body.dataset.models = String(Number(document.body.dataset.models) + 1);
  } catch (e) {
    console.error('model of', id, e);
    r.state = 'none';
    r.body.add(placeholder());
  }
}

function panelFor(id) {
  const s = document.createElement('section');
  s.className = 'robot';
  s.id = 'peer-' + id;
  s.dataset.id = id;
  s.innerHTML = `<h2><span class="swatch"></span><span class="rid"></span></h2>
    <div class="lock"></div>
    <dl><dt>kind</dt><dd class="kind"></dd><dt>type</dt><dd class="ptype"></dd>
    <dt>lives</dt><dd class="lives"></dd><dt>model</dt><dd class="model"></dd>
    <dt>task</dt><dd class="task"></dd>
    <dt>joints</dt><dd class="joints"></dd></dl>`;
  s.querySelector('.rid').textContent = id;
  return s;
}

function ensure(p, index) {
  let r = robots.get(p.id);
  if (!r) {
    const color = COLORS[index % COLORS.length];
    const group = new THREE.Group();   // at the slot, moved by the base pose
    const body = new THREE.Group();
    group.add(body);
    const tag = label(p.id);
    tag.position.set(0, 0, 1.05);
    group.add(tag);
    if (p.robot) root.add(group);      // agents, dashboards and bridges: a panel, no place in the world
    const panel = panelFor(p.id);
    panel.querySelector('.swatch').style.background = '#' + color.toString(16).padStart(6, '0');
    panels.appendChild(panel);
    r = { group, body, urdf: null, state: 'pending', color, panel, estop: false };
    robots.set(p.id, r);
  }
  return r;
}

function fmtTask(t) {
  if (!t || !t.status) return '—';
  return t.instruction ? `${t.status}: ${t.instruction}` : t.status;
}

function apply(snap) {
  window.lastSnapshot = snap;  // for tests and the console
  const peers = snap.peers;
  const seen = new Set(peers.map(p => p.id));
  for (const [id, r] of robots) {
    if (!seen.has(id)) { root.remove(r.group); r.panel.remove(); robots.delete(id); }
  }
  document.getElementById('empty').hidden = peers.length > 0;
  const drawn = peers.filter(p => p.robot).map(p => p.id);
  peers.forEach((p, i) => {
    const r = ensure(p, i);
    const slotX = (drawn.indexOf(p.id) - (drawn.length - 1) / 2) * SPACING;
    const b = p.base_pose;
    r.group.position.set(slotX + (b ? b.x : 0), b ? b.y : 0, 0);
    r.group.rotation.z = b ? b.yaw : 0;
    if (r.state === 'pending') {
      if (p.model === true) loadModel(r, p.id);
      else if (p.model === false) { r.state = 'none'; r.body.add(placeholder()); }
      else if (!p.robot) r.state = 'none';
    }
    if (r.urdf) {
      for (const [name, q] of Object.entries(p.joints || {})) {
        if (r.urdf.joints[name] && typeof q === 'number') r.urdf.setJointValue(name, q);
      }
    }
    const estop = !!p.lockout;
    if (r.urdf && estop !== r.estop) tint(r.urdf, estop ? ESTOP_COLOR : r.color);
    r.estop = estop;
    const el = r.panel;
    el.dataset.estop = estop ? '1' : '0';
    el.dataset.model = r.state;
    el.dataset.lives = p.lives;
    el.querySelector('.kind').textContent = p.kind;
    el.querySelector('.ptype').textContent = p.peer_type;
    el.querySelector('.lives').textContent = p.lives;
    el.querySelector('.task').textContent = fmtTask(p.task);
    // a locked-out robot refuses `features` (its URDF): the view asks again every 5 s
    el.querySelector('.model').textContent = !p.robot ? '—' : p.model === true ? 'URDF'
      : p.model === false ? 'none published' : (p.lockout ? 'asked after resume' : 'asking…');
    const js = Object.entries(p.joints || {});
    el.querySelector('.joints').textContent = js.length
      ? js.map(([n, q]) => `${n} ${typeof q === 'number' ? q.toFixed(2) : '?'}`).join(', ') : '—';
    el.querySelector('.lock').textContent = estop
      ? `E-STOPPED — locked out${p.lockout.issuer ? ' by ' + p.lockout.issuer : ''}${p.lockout.reason ? ': ' + p.lockout.reason : ''}`
      : '';
  });
  const locked = peers.filter(p => p.lockout).map(p => p.id);
  banner.hidden = locked.length === 0;
  banner.textContent = locked.length ? `E-STOP — locked out: ${locked.join(', ')}` : '';
  document.body.dataset.estopped = locked.join(',');
  frameCamera(drawn.length);
  document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots) + 1);
}

const events = new EventSource('/api/events');
events.onopen = () => { conn.textContent = 'live'; conn.className = 'conn'; };
events.onerror = () => { conn.textContent = 'disconnected — retrying'; conn.className = 'conn down'; };
events.onmessage = (ev) => {
  try { apply(JSON.parse(ev.data)); } catch (e) { console.error('bad snapshot', e); }
};

resize();
frameCamera(1);
renderer.setAnimationLoop(() => renderer.render(scene, camera));
