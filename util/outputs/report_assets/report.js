/* RingNet run report: pages of rows and a small WebGL mesh viewer. Plain WebGL 1, no library,
 * no network: every file it loads is a <script> next to report.html (file:// allows those).
 *
 * Viewer camera (tests/test_report_browser.py computes the same from the mesh): positions in
 * the render camera's frame (y down, z away) are turned to y up, z toward the viewer
 * (x, -y, -z); centre c = the middle of their bounding box, r = the largest distance of a
 * vertex from c; vertical field of view FOV_DEG, the eye on +z at distance
 * DIST = r / sin(FOV / 2) * MARGIN from c; yaw (about y) and pitch (about x) orbit it. */
(function () {
  'use strict';
  var FOV_DEG = 30, MARGIN = 1.15, BACKGROUND = [0.93, 0.94, 0.95], SKIN = [0.80, 0.74, 0.70];
  var pages = {}, data = {}, scripts = {}, config = null, current = -1, viewer = null;

  function loadScript(src) {
    if (!scripts[src]) {
      scripts[src] = new Promise(function (resolve, reject) {
        var s = document.createElement('script');
        s.src = src;
        s.onload = resolve;
        s.onerror = function () {
          delete scripts[src];
          reject(new Error('cannot load ' + src));
        };
        document.head.appendChild(s);
      });
    }
    return scripts[src];
  }

  function need(key, src) {
    if (data[key]) return Promise.resolve(data[key]);
    return loadScript(src).then(function () {
      if (!data[key]) throw new Error(src + ' does not hold ' + key);
      return data[key];
    });
  }

  function keyOf(src) {
    return src.replace(/^.*\//, '').replace(/\.js$/, '');
  }

  /* ---- pages ---------------------------------------------------------------------------- */

  function pageSrc(k) {
    return config.pageSrc + ('000' + k).slice(-4) + '.js';
  }

  function showPage(k) {
    k = Math.max(0, Math.min(config.pages - 1, k | 0));
    current = k;
    drawPagers();
    if (viewer) viewer.detach();
    var rows = document.getElementById('rows');
    if (pages[k] !== undefined) {
      rows.innerHTML = pages[k];
      return Promise.resolve();
    }
    rows.setAttribute('aria-busy', 'true');
    return loadScript(pageSrc(k)).then(function () {
      if (current === k) {
        rows.innerHTML = pages[k];
        rows.removeAttribute('aria-busy');
      }
    }, function (e) {
      rows.innerHTML = '<p class="problem">' + e.message + '</p>';
    });
  }

  function go(k) {
    if (k !== current) {
      history.replaceState(null, '', '#page' + (k + 1));
      showPage(k).then(function () { window.scrollTo(0, 0); });
    }
  }

  function drawPagers() {
    var navs = document.querySelectorAll('nav.pager');
    for (var i = 0; i < navs.length; i++) {
      var nav = navs[i];
      if (config.pages < 2) {
        nav.hidden = true;
        continue;
      }
      var first = current * config.pageSize + 1;
      var last = Math.min(config.rows, first + config.pageSize - 1);
      nav.innerHTML = '<button type="button" data-go="' + (current - 1) + '"' +
        (current ? '' : ' disabled') + '>&larr; previous</button> ' +
        '<span>rows ' + first + '&ndash;' + last + ' of ' + config.rows + ' &middot; page ' +
        '<input type="number" min="1" max="' + config.pages + '" value="' + (current + 1) +
        '"> of ' + config.pages + '</span> <button type="button" data-go="' + (current + 1) +
        '"' + (current < config.pages - 1 ? '' : ' disabled') + '>next &rarr;</button>';
    }
  }

  function onPagerClick(e) {
    var b = e.target.closest('button[data-go]');
    if (b && !b.disabled) go(parseInt(b.getAttribute('data-go'), 10));
  }

  function onPagerChange(e) {
    if (e.target.tagName === 'INPUT') go(parseInt(e.target.value, 10) - 1);
  }

  /* ---- data ----------------------------------------------------------------------------- */

  function bytes(b64) {
    var s = atob(b64), out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  function floats(b64) {
    return new Float32Array(bytes(b64).buffer);
  }

  function uints(b64, bits) {
    var b = bytes(b64).buffer;
    return bits === 32 ? new Uint32Array(b) : new Uint16Array(b);
  }

  /* the view record -> {positions (viewer frame), indices, uvs, map, texture, morph...} */
  function meshOf(view, topology, morph) {
    var src = floats(view.positions), n = src.length / 3, flip = view.frame === 'camera';
    var map = topology.map ? uints(topology.map, 32) : null;
    var count = map ? map.length : n, pos = new Float32Array(count * 3);
    for (var i = 0; i < count; i++) {
      var j = map ? map[i] : i;
      pos[3 * i] = src[3 * j];
      pos[3 * i + 1] = flip ? -src[3 * j + 1] : src[3 * j + 1];
      pos[3 * i + 2] = flip ? -src[3 * j + 2] : src[3 * j + 2];
    }
    /* the bounding box of every vertex of the file (also those no triangle uses) */
    var lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity], k;
    for (i = 0; i < n; i++) {
      for (k = 0; k < 3; k++) {
        var x = (flip && k ? -1 : 1) * src[3 * i + k];
        lo[k] = Math.min(lo[k], x);
        hi[k] = Math.max(hi[k], x);
      }
    }
    var center = [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2], r2 = 0;
    for (i = 0; i < n; i++) {
      var d2 = 0;
      for (k = 0; k < 3; k++) {
        var dx = (flip && k ? -1 : 1) * src[3 * i + k] - center[k];
        d2 += dx * dx;
      }
      r2 = Math.max(r2, d2);
    }
    return {
      base: pos, n: n, map: map, flip: flip, center: center, radius: Math.sqrt(r2) || 1,
      indices: uints(topology.indices, topology.index_bits),
      uvs: topology.uvs ? floats(topology.uvs) : null,
      texture: view.texture || null,
      targets: morph ? floats(morph.targets) : null,
      names: view.names || [], weights: view.weights || []
    };
  }

  /* ---- viewer --------------------------------------------------------------------------- */

  var VS = 'attribute vec3 aPos; attribute vec3 aNormal; attribute vec2 aUV;' +
    'uniform mat4 uView, uProj; uniform mat3 uNormal;' +
    'varying vec3 vNormal, vEye; varying vec2 vUV;' +
    'void main() { vec4 eye = uView * vec4(aPos, 1.0); vEye = eye.xyz;' +
    ' vNormal = uNormal * aNormal; vUV = aUV; gl_Position = uProj * eye; }';
  var FS = 'precision mediump float; varying vec3 vNormal, vEye; varying vec2 vUV;' +
    'uniform sampler2D uTex; uniform float uTextured; uniform vec3 uColor;' +
    'void main() { vec3 n = normalize(vNormal), v = normalize(-vEye);' +
    ' if (dot(n, v) < 0.0) n = -n;' +  /* two-sided: FLAME is open at the eyes and neck */
    ' vec3 l = normalize(vec3(0.35, 0.45, 1.0)); float d = max(dot(n, l), 0.0);' +
    ' float s = pow(max(dot(n, normalize(l + v)), 0.0), 32.0) * 0.12;' +
    ' vec3 base = uTextured > 0.5 ? texture2D(uTex, vUV).rgb : uColor;' +
    ' gl_FragColor = vec4(base * (0.3 + 0.7 * d) + s, 1.0); }';

  function shader(gl, type, text) {
    var s = gl.createShader(type);
    gl.shaderSource(s, text);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
    return s;
  }

  function multiply(a, b) {  /* 4x4, column-major */
    var o = new Float32Array(16);
    for (var c = 0; c < 4; c++) {
      for (var r = 0; r < 4; r++) {
        var s = 0;
        for (var k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
        o[c * 4 + r] = s;
      }
    }
    return o;
  }

  function Viewer() {
    var root = this.root = document.createElement('div');
    root.className = 'viewer';
    root.innerHTML = '<div class="bar"><span class="label"></span>' +
      '<button type="button" data-act="reset" title="reset view and expression">reset</button>' +
      '<button type="button" data-act="close">close</button></div>' +
      '<canvas width="480" height="480"></canvas>' +
      '<p class="hint">drag: turn · wheel: zoom · double-click: reset</p>' +
      '<div class="sliders"></div>';
    this.canvas = root.querySelector('canvas');
    var gl = this.gl = this.canvas.getContext('webgl', {antialias: true,
                                                       preserveDrawingBuffer: true});
    if (!gl) throw new Error('this browser has no WebGL');
    this.wide = gl.getExtension('OES_element_index_uint');
    var p = this.program = gl.createProgram();
    gl.attachShader(p, shader(gl, gl.VERTEX_SHADER, VS));
    gl.attachShader(p, shader(gl, gl.FRAGMENT_SHADER, FS));
    gl.linkProgram(p);
    if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(p));
    this.loc = {};
    var names = ['aPos', 'aNormal', 'aUV'];
    for (var i = 0; i < names.length; i++) this.loc[names[i]] = gl.getAttribLocation(p, names[i]);
    names = ['uView', 'uProj', 'uNormal', 'uTex', 'uTextured', 'uColor'];
    for (i = 0; i < names.length; i++) this.loc[names[i]] = gl.getUniformLocation(p, names[i]);
    this.buffers = {pos: gl.createBuffer(), normal: gl.createBuffer(), uv: gl.createBuffer(),
                    index: gl.createBuffer()};
    this.texture = gl.createTexture();
    this.mesh = null;
    this.pending = false;
    this.bind();
  }

  Viewer.prototype.bind = function () {
    var self = this, c = this.canvas, drag = null;
    c.addEventListener('pointerdown', function (e) {
      drag = {x: e.clientX, y: e.clientY};
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener('pointermove', function (e) {
      if (!drag) return;
      self.yaw += (e.clientX - drag.x) * 0.01;
      self.pitch = Math.max(-1.5, Math.min(1.5, self.pitch + (e.clientY - drag.y) * 0.01));
      drag = {x: e.clientX, y: e.clientY};
      self.draw();
    });
    c.addEventListener('pointerup', function () { drag = null; });
    c.addEventListener('wheel', function (e) {
      e.preventDefault();
      self.zoom = Math.max(0.25, Math.min(4, self.zoom * Math.exp(e.deltaY * 0.001)));
      self.draw();
    }, {passive: false});
    c.addEventListener('dblclick', function () { self.resetView(); });
    this.root.addEventListener('click', function (e) {
      var act = e.target.getAttribute && e.target.getAttribute('data-act');
      if (act === 'close') self.detach();
      if (act === 'reset') { self.resetWeights(); self.resetView(); }
    });
    this.root.querySelector('.sliders').addEventListener('input', function (e) {
      var t = parseInt(e.target.getAttribute('data-target'), 10);
      if (isNaN(t)) return;
      self.setWeight(t, parseFloat(e.target.value));
      e.target.nextSibling.textContent = parseFloat(e.target.value).toFixed(2);
    });
  };

  Viewer.prototype.detach = function () {
    if (this.root.parentNode) this.root.parentNode.removeChild(this.root);
    var on = document.querySelector('button.view.on');
    if (on) on.classList.remove('on');
  };

  Viewer.prototype.show = function (mesh, label, slot) {
    var gl = this.gl, b = this.buffers;
    if (mesh.indices instanceof Uint32Array && !this.wide) {
      throw new Error('this WebGL has no 32-bit indices');
    }
    this.mesh = mesh;
    this.positions = new Float32Array(mesh.base);
    this.current = mesh.weights.slice();
    this.applyWeights(mesh.weights, true);
    this.center = mesh.center;
    this.radius = mesh.radius;
    var p = mesh.base;
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, b.index);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, mesh.indices, gl.STATIC_DRAW);
    gl.bindBuffer(gl.ARRAY_BUFFER, b.uv);
    gl.bufferData(gl.ARRAY_BUFFER, mesh.uvs || new Float32Array(2 * p.length / 3), gl.STATIC_DRAW);
    this.textured = false;
    this.root.querySelector('.label').textContent = label + ' · ' + (p.length / 3) +
      ' vertices, ' + (mesh.indices.length / 3) + ' triangles';
    this.sliders(mesh);
    slot.appendChild(this.root);
    this.canvas.removeAttribute('data-drawn');
    this.resetView();
    if (mesh.texture) {
      var self = this, img = new Image();
      img.onload = function () {
        if (self.mesh !== mesh) return;
        gl.bindTexture(gl.TEXTURE_2D, self.texture);
        gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, true);  /* OBJ's v runs up the image */
        gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, img);
        gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
        gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
        gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
        gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
        self.textured = true;
        self.canvas.setAttribute('data-textured', '1');
        self.draw();
      };
      img.src = mesh.texture;
    }
    this.canvas.setAttribute('data-textured', '0');
  };

  Viewer.prototype.sliders = function (mesh) {
    var box = this.root.querySelector('.sliders'), html = [];
    if (mesh.targets) {
      for (var t = 0; t < mesh.names.length; t++) {
        html.push('<label><span>' + mesh.names[t].replace(/[<>&"]/g, '') + '</span>' +
                  '<input type="range" min="-3" max="3" step="0.01" data-target="' + t +
                  '" value="' + mesh.weights[t] + '"><output>' + mesh.weights[t].toFixed(2) +
                  '</output></label>');
      }
    }
    box.innerHTML = html.join('');
    box.hidden = !html.length;
  };

  /* positions = base + sum_t w_t * target_t (targets per mesh vertex, expanded by map) */
  Viewer.prototype.applyWeights = function (weights, fresh) {
    var m = this.mesh, pos = this.positions;
    if (m.targets) {
      var n3 = m.n * 3, count = pos.length / 3;
      for (var t = 0; t < weights.length; t++) {
        var dw = weights[t] - (fresh ? 0 : this.current[t]);
        if (!dw) continue;
        var off = t * n3;
        for (var i = 0; i < count; i++) {
          var j = m.map ? m.map[i] : i, s = m.flip ? -1 : 1;
          pos[3 * i] += dw * m.targets[off + 3 * j];
          pos[3 * i + 1] += s * dw * m.targets[off + 3 * j + 1];
          pos[3 * i + 2] += s * dw * m.targets[off + 3 * j + 2];
        }
      }
      this.current = weights.slice();
    }
    this.upload();
  };

  Viewer.prototype.setWeight = function (t, w) {
    var next = this.current.slice();
    next[t] = w;
    this.applyWeights(next, false);
    this.draw();
  };

  Viewer.prototype.resetWeights = function () {
    var m = this.mesh;
    if (!m || !m.targets) return;
    this.positions = new Float32Array(m.base);
    this.applyWeights(m.weights, true);
    this.sliders(m);
  };

  /* area-weighted vertex normals (the sum of the unnormalised face normals) */
  Viewer.prototype.upload = function () {
    var gl = this.gl, p = this.positions, f = this.mesh.indices;
    var normals = new Float32Array(p.length);
    for (var i = 0; i < f.length; i += 3) {
      var a = 3 * f[i], b = 3 * f[i + 1], c = 3 * f[i + 2];
      var ux = p[b] - p[a], uy = p[b + 1] - p[a + 1], uz = p[b + 2] - p[a + 2];
      var vx = p[c] - p[a], vy = p[c + 1] - p[a + 1], vz = p[c + 2] - p[a + 2];
      var nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
      normals[a] += nx; normals[a + 1] += ny; normals[a + 2] += nz;
      normals[b] += nx; normals[b + 1] += ny; normals[b + 2] += nz;
      normals[c] += nx; normals[c + 1] += ny; normals[c + 2] += nz;
    }
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffers.pos);
    gl.bufferData(gl.ARRAY_BUFFER, p, gl.DYNAMIC_DRAW);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffers.normal);
    gl.bufferData(gl.ARRAY_BUFFER, normals, gl.DYNAMIC_DRAW);
  };

  Viewer.prototype.resetView = function () {
    this.yaw = 0;
    this.pitch = 0;
    this.zoom = 1;
    this.draw();
  };

  Viewer.prototype.draw = function () {
    var self = this;
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(function () {
      self.pending = false;
      self.render();
    });
  };

  Viewer.prototype.render = function () {
    var gl = this.gl, c = this.canvas, L = this.loc, b = this.buffers;
    var ratio = Math.min(window.devicePixelRatio || 1, 2);
    var size = Math.round((c.clientWidth || 480) * ratio);
    if (c.width !== size || c.height !== size) { c.width = size; c.height = size; }
    gl.viewport(0, 0, c.width, c.height);
    gl.clearColor(BACKGROUND[0], BACKGROUND[1], BACKGROUND[2], 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    if (!this.mesh) return;
    gl.enable(gl.DEPTH_TEST);
    gl.useProgram(this.program);
    var fov = FOV_DEG * Math.PI / 180, f = 1 / Math.tan(fov / 2);
    var dist = this.radius / Math.sin(fov / 2) * MARGIN * this.zoom;
    var near = Math.max(dist - 2 * this.radius, dist * 0.01), far = dist + 2 * this.radius;
    var proj = new Float32Array([f, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / (near - far), -1,
                                 0, 0, 2 * far * near / (near - far), 0]);
    var cy = Math.cos(this.yaw), sy = Math.sin(this.yaw);
    var cp = Math.cos(this.pitch), sp = Math.sin(this.pitch);
    var ry = new Float32Array([cy, 0, -sy, 0, 0, 1, 0, 0, sy, 0, cy, 0, 0, 0, 0, 1]);
    var rx = new Float32Array([1, 0, 0, 0, 0, cp, sp, 0, 0, -sp, cp, 0, 0, 0, 0, 1]);
    var ce = this.center;
    var toCenter = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0,
                                     -ce[0], -ce[1], -ce[2], 1]);
    var back = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, -dist, 1]);
    var rot = multiply(rx, ry), view = multiply(back, multiply(rot, toCenter));
    var normal = new Float32Array([rot[0], rot[1], rot[2], rot[4], rot[5], rot[6],
                                   rot[8], rot[9], rot[10]]);
    gl.uniformMatrix4fv(L.uView, false, view);
    gl.uniformMatrix4fv(L.uProj, false, proj);
    gl.uniformMatrix3fv(L.uNormal, false, normal);
    gl.uniform1f(L.uTextured, this.textured ? 1 : 0);
    gl.uniform3fv(L.uColor, SKIN);
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.uniform1i(L.uTex, 0);
    var attrs = [[L.aPos, b.pos, 3], [L.aNormal, b.normal, 3], [L.aUV, b.uv, 2]];
    for (var i = 0; i < attrs.length; i++) {
      if (attrs[i][0] < 0) continue;
      gl.bindBuffer(gl.ARRAY_BUFFER, attrs[i][1]);
      gl.enableVertexAttribArray(attrs[i][0]);
      gl.vertexAttribPointer(attrs[i][0], attrs[i][2], gl.FLOAT, false, 0, 0);
    }
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, b.index);
    var wide = this.mesh.indices instanceof Uint32Array;
    gl.drawElements(gl.TRIANGLES, this.mesh.indices.length,
                    wide ? gl.UNSIGNED_INT : gl.UNSIGNED_SHORT, 0);
    c.setAttribute('data-drawn', '1');
  };

  function openView(button) {
    var section = button.closest('.face'), slot = section.querySelector('.slot');
    var src = button.getAttribute('data-src'), key = keyOf(src);
    button.disabled = true;
    need(key, src).then(function (view) {
      var parts = [need(keyOf(view.topology), view.topology)];
      if (view.morph) parts.push(need(keyOf(view.morph), view.morph));
      return Promise.all(parts).then(function (got) {
        if (!viewer) viewer = new Viewer();
        viewer.detach();
        viewer.show(meshOf(view, got[0], got[1]), button.getAttribute('data-file'), slot);
        button.classList.add('on');
      });
    }).catch(function (e) {
      var p = document.createElement('p');
      p.className = 'problem';
      p.textContent = e.message;
      slot.appendChild(p);
    }).then(function () { button.disabled = false; });
  }

  function onRowsClick(e) {
    var b = e.target.closest('button.view');
    if (b) openView(b);
  }

  window.RingNetReport = {
    start: function (c) {
      config = c;
      pages[0] = document.getElementById('rows').innerHTML;
      var navs = document.querySelectorAll('nav.pager');
      for (var i = 0; i < navs.length; i++) {
        navs[i].addEventListener('click', onPagerClick);
        navs[i].addEventListener('change', onPagerChange);
      }
      document.getElementById('rows').addEventListener('click', onRowsClick);
      var m = /^#page(\d+)$/.exec(location.hash);
      current = 0;
      if (m && parseInt(m[1], 10) > 1) showPage(parseInt(m[1], 10) - 1);
      else drawPagers();
    },
    page: function (k, html) { pages[k] = html; },
    data: function (key, value) { data[key] = value; }
  };
}());
